// Package clientproxy is the client proxy component of seed 003: a service
// domain whose IQ requests are answered by the resources of one ordinary
// account (the "implementing client"), so a service can be written as a
// client and several instances of it share the load.
//
// It is an internal component (module.Component registered through
// module.Host.AddComponent), configured as a [[component.service]] with
// type = "client_proxy" and a target_address. It subscribes to the target's
// presence (the target must approve), tracks the target's available
// resources, and forwards each IQ get/set sent to the service's domain to
// one random available resource, with Jabber Address Translation of the
// requester (see jat.go); the answer is translated back and delivered to the
// requester with its original id. See README.md for how this differs from
// the original module.
package clientproxy

import (
	"context"
	"fmt"

	"parley/internal/config"
	"parley/internal/module"
	"parley/internal/xmpp/jid"
)

// ClientProxy is the module of one host: it runs the client_proxy services
// whose parent host (config.ParentHost) is this host.
type ClientProxy struct {
	h        *module.Host
	services []*Service
}

var _ module.Module = (*ClientProxy)(nil)

// New builds the module for h.
func New(h *module.Host) (module.Module, error) {
	cp := &ClientProxy{h: h}
	if h.Config == nil {
		return cp, nil
	}
	for _, sv := range h.Config.Component.Services {
		if sv.Type != config.ComponentClientProxy || h.Config.ParentHost(sv.Domain) != h.Domain {
			continue
		}
		target, err := jid.Parse(sv.TargetAddress)
		if err != nil || target.Local() == "" || target.Resource() != "" {
			return nil, fmt.Errorf("component.service %s: target_address %q is not a bare JID", sv.Domain, sv.TargetAddress)
		}
		domain, err := jid.New("", sv.Domain, "")
		if err != nil {
			return nil, fmt.Errorf("component.service: %q is not a domain: %w", sv.Domain, err)
		}
		cp.services = append(cp.services, newService(h, domain, target, sv.MaxPending, sv.Timeout.Duration))
		if *sv.Public {
			h.AddItem(module.DiscoItem{JID: sv.Domain, Name: sv.Name})
		}
	}
	return cp, nil
}

// Name implements module.Module.
func (*ClientProxy) Name() string { return "clientproxy" }

// Start routes each service's domain to it, asks the target for a presence
// subscription and probes its presence: after a restart the subscription
// already exists, and the probe is what tells the service which resources
// are online (the original module waited for the next presence change).
func (cp *ClientProxy) Start(ctx context.Context) error {
	for _, s := range cp.services {
		cp.h.AddComponent(s.domain.String(), s)
		s.start(ctx)
	}
	return nil
}

// Stop unroutes the services and fails their pending requests.
func (cp *ClientProxy) Stop(ctx context.Context) error {
	for _, s := range cp.services {
		cp.h.RemoveComponent(s.domain.String(), s)
		s.stop(ctx)
	}
	return nil
}

// Services returns the services run by this module (tests).
func (cp *ClientProxy) Services() []*Service { return cp.services }
