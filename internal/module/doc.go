// Package module is the API between Parley's core and its feature modules.
//
// A module is constructed once per virtual host with that host's *Host, and
// touches the world only through it: typed hooks (Prosody-style events named
// after the stanza's shape), the IQ handler registry, the disco registry that
// is derived from what modules register, the router, storage and config.
// Nothing here is package-level state, so several servers can run in one
// process (the integration tests do exactly that).
//
// Event names, fired on the host that owns the address:
//
//	out/message, out/presence, out/iq   stanza from a local client session, before routing
//	egress/message, egress/presence, egress/iq
//	                                    stanza from a local account on its way to anyone,
//	                                    whoever produced it (after out/<kind>)
//	message/host, message/bare, message/full
//	presence/host, presence/bare, presence/full
//	iq/host, iq/bare, iq/full           inbound to a local address, before delivery
//
// IQ requests to the host or to an account's bare JID are dispatched by
// namespace through the IQ registry (RegisterIQ, which also announces the
// namespace in disco#info; RegisterRefusingIQ for a handler that only
// explains a refusal and announces nothing); the core answers
// service-unavailable for namespaces nobody registered.
//
// Priorities: modules use positive priorities to act before the core's
// delivery rules (which run as the last handler, priority PriorityDeliver),
// and may stop the chain by returning true.
package module
