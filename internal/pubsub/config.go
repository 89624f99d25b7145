package pubsub

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// Access models (XEP-0060 §4.5) this package implements. "authorize" is not
// one of them: it needs the owner to approve subscriptions, which no
// client of a personal eventing service does.
const (
	AccessOpen      = "open"
	AccessPresence  = "presence"
	AccessRoster    = "roster"
	AccessWhitelist = "whitelist"
)

// Values of pubsub#send_last_published_item.
const (
	SendLastNever            = "never"
	SendLastOnSub            = "on_sub"
	SendLastOnSubAndPresence = "on_sub_and_presence"
)

// Values of pubsub#publish_model and pubsub#notification_type.
const (
	publishModelPublishers   = "publishers"
	publishModelSubscribers  = "subscribers"
	publishModelOpen         = "open"
	notificationTypeHeadline = "headline"
	notificationTypeNormal   = "normal"
)

// Bounds on configuration values, so a node's configuration stays small.
const (
	maxTitleBytes       = 1024
	maxRosterGroups     = 64
	maxConfigValueBytes = 1024
)

// XEP-0004 vocabulary.
const (
	maxItemsMaxValue = "max"
	formTypeVar      = "FORM_TYPE"
	booleanType      = "boolean"
	listSingleType   = "list-single"
	textSingleType   = "text-single"
	listMultiType    = "list-multi"
	hiddenType       = "hidden"
	submitForm       = "submit"
	cancelForm       = "cancel"
	resultForm       = "result"
	formForm         = "form"
)

// MaxItemsMax is NodeConfig.MaxItems for "max": as many items as the
// service's limit allows (XEP-0060 config-node-max). It is stored as such,
// so a limit raised later applies to the node too.
const MaxItemsMax = -1

// NodeConfig is the configuration of a node (XEP-0060 §16.4.4, the
// pubsub#node_config form). Only options the service acts on exist here;
// the form offers exactly these, and a submitted form with any other field
// is refused rather than silently ignored.
type NodeConfig struct {
	Title string `json:"title,omitempty"`
	// Type is pubsub#type: when set, the namespace every payload must have.
	Type     string `json:"type,omitempty"`
	MaxItems int    `json:"max_items"`
	// AccessModel is one of the Access* constants.
	AccessModel string `json:"access_model"`
	// RosterGroups are the groups allowed by the roster access model.
	RosterGroups          []string `json:"roster_groups,omitempty"`
	PublishModel          string   `json:"publish_model"`
	PersistItems          bool     `json:"persist_items"`
	DeliverNotifications  bool     `json:"deliver_notifications"`
	DeliverPayloads       bool     `json:"deliver_payloads"`
	NotifyConfig          bool     `json:"notify_config"`
	NotifyDelete          bool     `json:"notify_delete"`
	NotifyRetract         bool     `json:"notify_retract"`
	SendLastPublishedItem string   `json:"send_last_published_item"`
	NotificationType      string   `json:"notification_type"`
}

// DefaultConfig is the default node configuration of a personal eventing
// service (XEP-0163 §5 "Recommended Defaults"): presence access, payloads
// delivered, the last item sent on subscription and presence, persistent
// items, one item kept (the "singleton" use of most PEP nodes).
func DefaultConfig() NodeConfig {
	return NodeConfig{
		MaxItems:             1,
		AccessModel:          AccessPresence,
		PublishModel:         publishModelPublishers,
		PersistItems:         true,
		DeliverNotifications: true,
		DeliverPayloads:      true,
		NotifyRetract:        true,
		// XEP-0060 §8.4.1: subscribers are told when a node goes.
		NotifyDelete:          true,
		SendLastPublishedItem: SendLastOnSubAndPresence,
		NotificationType:      notificationTypeHeadline,
	}
}

// ItemLimit is the number of items the node keeps under the service's
// limits: its max_items, "max" meaning the service's maximum.
func (c NodeConfig) ItemLimit(l Limits) int {
	if c.MaxItems == MaxItemsMax || c.MaxItems > l.MaxItems {
		return l.MaxItems
	}
	return c.MaxItems
}

// encode is the stored form of a configuration.
func (c NodeConfig) encode() []byte {
	b, err := json.Marshal(c)
	if err != nil {
		panic(err) // a struct of strings, ints and bools always marshals
	}
	return b
}

// decodeConfig reads a stored configuration over defaults, so options added
// after a node was created take their default value.
func decodeConfig(b []byte, defaults NodeConfig) (NodeConfig, error) {
	c := defaults
	c.RosterGroups = nil
	if len(b) == 0 {
		return c, nil
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("pubsub: stored node configuration: %w", err)
	}
	return c, nil
}

// field is one option of the node configuration form: how to show it, read
// it and set it. The table of fields (configFields) is the single list the
// form, form processing and publish-options preconditions all use.
type field struct {
	name    string
	typ     string
	label   string
	options []string
	get     func(c *NodeConfig) []string
	// set validates values and applies them; a non-empty result is the
	// reason they are refused.
	set func(c *NodeConfig, values []string, l Limits) string
	// same reports whether a and b agree on this option as a precondition
	// sees it; nil compares get.
	same func(a, b *NodeConfig, l Limits) bool
}

func configFields() []field {
	return []field{
		{name: "pubsub#title", typ: textSingleType, label: "A friendly name for the node",
			get: func(c *NodeConfig) []string { return []string{c.Title} },
			set: func(c *NodeConfig, v []string, _ Limits) string {
				s, why := single(v)
				if why == "" && len(s) > maxTitleBytes {
					why = "title too long"
				}
				c.Title = s
				return why
			}},
		{name: "pubsub#type", typ: textSingleType, label: "The namespace of the payloads of this node",
			get: func(c *NodeConfig) []string { return []string{c.Type} },
			set: func(c *NodeConfig, v []string, _ Limits) string {
				s, why := single(v)
				c.Type = s
				return why
			}},
		{name: "pubsub#max_items", typ: textSingleType, label: "Maximum number of items to persist ('max' for the service's maximum)",
			get: func(c *NodeConfig) []string {
				if c.MaxItems == MaxItemsMax {
					return []string{maxItemsMaxValue}
				}
				return []string{strconv.Itoa(c.MaxItems)}
			},
			set: func(c *NodeConfig, v []string, l Limits) string {
				s, why := single(v)
				if why != "" {
					return why
				}
				if s == maxItemsMaxValue {
					c.MaxItems = MaxItemsMax
					return ""
				}
				n, err := strconv.Atoi(s)
				switch {
				case err != nil || n < 1:
					return "pubsub#max_items must be a positive number or 'max'"
				case n > l.MaxItems:
					return "pubsub#max_items is above this service's maximum of " + strconv.Itoa(l.MaxItems)
				}
				c.MaxItems = n
				return ""
			},
			same: func(a, b *NodeConfig, l Limits) bool { return a.ItemLimit(l) == b.ItemLimit(l) }},
		{name: "pubsub#access_model", typ: listSingleType, label: "Who may subscribe and retrieve items",
			options: []string{AccessOpen, AccessPresence, AccessRoster, AccessWhitelist},
			get:     func(c *NodeConfig) []string { return []string{c.AccessModel} },
			set: func(c *NodeConfig, v []string, _ Limits) string {
				return oneOf(v, &c.AccessModel, AccessOpen, AccessPresence, AccessRoster, AccessWhitelist)
			}},
		{name: "pubsub#roster_groups_allowed", typ: listMultiType, label: "Roster groups allowed to subscribe (roster access model)",
			get: func(c *NodeConfig) []string { return c.RosterGroups },
			set: func(c *NodeConfig, v []string, _ Limits) string {
				if len(v) > maxRosterGroups {
					return "too many roster groups"
				}
				gs := make([]string, 0, len(v))
				for _, g := range v {
					if len(g) > maxConfigValueBytes {
						return "roster group name too long"
					}
					if g != "" {
						gs = append(gs, g)
					}
				}
				slices.Sort(gs)
				c.RosterGroups = slices.Compact(gs)
				if len(c.RosterGroups) == 0 {
					c.RosterGroups = nil
				}
				return ""
			}},
		{name: "pubsub#publish_model", typ: listSingleType, label: "Who may publish",
			options: []string{publishModelPublishers, publishModelSubscribers, publishModelOpen},
			get:     func(c *NodeConfig) []string { return []string{c.PublishModel} },
			set: func(c *NodeConfig, v []string, _ Limits) string {
				return oneOf(v, &c.PublishModel, publishModelPublishers, publishModelSubscribers, publishModelOpen)
			}},
		boolField("pubsub#persist_items", "Persist items to storage", func(c *NodeConfig) *bool { return &c.PersistItems }),
		boolField("pubsub#deliver_notifications", "Deliver event notifications", func(c *NodeConfig) *bool { return &c.DeliverNotifications }),
		boolField("pubsub#deliver_payloads", "Deliver payloads with event notifications", func(c *NodeConfig) *bool { return &c.DeliverPayloads }),
		boolField("pubsub#notify_config", "Notify subscribers when the node configuration changes", func(c *NodeConfig) *bool { return &c.NotifyConfig }),
		boolField("pubsub#notify_delete", "Notify subscribers when the node is deleted", func(c *NodeConfig) *bool { return &c.NotifyDelete }),
		boolField("pubsub#notify_retract", "Notify subscribers when items are removed from the node", func(c *NodeConfig) *bool { return &c.NotifyRetract }),
		{name: "pubsub#send_last_published_item", typ: listSingleType, label: "When to send the last published item",
			options: []string{SendLastNever, SendLastOnSub, SendLastOnSubAndPresence},
			get:     func(c *NodeConfig) []string { return []string{c.SendLastPublishedItem} },
			set: func(c *NodeConfig, v []string, _ Limits) string {
				return oneOf(v, &c.SendLastPublishedItem, SendLastNever, SendLastOnSub, SendLastOnSubAndPresence)
			}},
		{name: "pubsub#notification_type", typ: listSingleType, label: "Message type of event notifications",
			options: []string{notificationTypeHeadline, notificationTypeNormal},
			get:     func(c *NodeConfig) []string { return []string{c.NotificationType} },
			set: func(c *NodeConfig, v []string, _ Limits) string {
				return oneOf(v, &c.NotificationType, notificationTypeHeadline, notificationTypeNormal)
			}},
	}
}

func boolField(name, label string, ptr func(c *NodeConfig) *bool) field {
	return field{name: name, typ: booleanType, label: label,
		get: func(c *NodeConfig) []string {
			if *ptr(c) {
				return []string{"1"}
			}
			return []string{"0"}
		},
		set: func(c *NodeConfig, v []string, _ Limits) string {
			s, why := single(v)
			if why != "" {
				return why
			}
			// XEP-0004 §3.3: boolean values are 0/false and 1/true.
			switch s {
			case "1", "true":
				*ptr(c) = true
			case "0", "false":
				*ptr(c) = false
			default:
				return name + " is not a boolean"
			}
			return ""
		}}
}

// single returns the one value of a single-valued field ("" for none).
func single(v []string) (string, string) {
	switch {
	case len(v) > 1:
		return "", "more than one value for a single-valued field"
	case len(v) == 0:
		return "", ""
	case len(v[0]) > maxConfigValueBytes:
		return "", "value too long"
	}
	return v[0], ""
}

func oneOf(v []string, dst *string, allowed ...string) string {
	s, why := single(v)
	if why != "" {
		return why
	}
	if !slices.Contains(allowed, s) {
		return "unsupported value " + strconv.Quote(s)
	}
	*dst = s
	return ""
}

// form renders c as a pubsub#node_config data form of type typ ("form" for
// the owner to fill in, "result" for metadata).
func (c NodeConfig) form(typ string, fields []field) *xml.Element {
	x := xml.New(NSData, "x").SetAttr("type", typ)
	x.Append(xml.New(NSData, "field").SetAttr("var", formTypeVar).SetAttr("type", hiddenType).
		Append(xml.New(NSData, "value").AppendText(NSNodeConfig)))
	for _, f := range fields {
		fl := xml.New(NSData, "field").SetAttr("var", f.name).SetAttr("type", f.typ)
		if typ == formForm && f.label != "" {
			fl.SetAttr("label", f.label)
		}
		for _, v := range f.get(&c) {
			fl.Append(xml.New(NSData, "value").AppendText(v))
		}
		if typ == formForm {
			for _, o := range f.options {
				fl.Append(xml.New(NSData, "option").Append(xml.New(NSData, "value").AppendText(o)))
			}
		}
		x.Append(fl)
	}
	return x
}

// submitted is a data form as submitted: field var → values, plus the
// FORM_TYPE if it had one.
type submitted struct {
	formType string
	values   map[string][]string
	order    []string
}

// parseForm reads a XEP-0004 form of type submit (or cancel, reported by
// cancelled). A form whose FORM_TYPE is not want is refused.
func parseForm(x *xml.Element, want string) (f submitted, cancelled bool, err *Error) {
	if x == nil || x.Space != NSData || x.Local != "x" {
		return f, false, errf(stanza.BadRequest, "", "expected a data form")
	}
	switch x.Attr("type") {
	case cancelForm:
		return f, true, nil
	case submitForm:
	default:
		return f, false, errf(stanza.BadRequest, "", "the data form must be of type submit")
	}
	f.values = map[string][]string{}
	for _, fl := range x.Elements() {
		if fl.Space != NSData || fl.Local != "field" {
			continue
		}
		name := fl.Attr("var")
		if name == "" {
			continue
		}
		var vals []string
		for _, v := range fl.Elements() {
			if v.Space == NSData && v.Local == "value" {
				vals = append(vals, v.Text())
			}
		}
		if name == formTypeVar {
			if len(vals) > 0 {
				f.formType = vals[0]
			}
			continue
		}
		if _, dup := f.values[name]; !dup {
			f.order = append(f.order, name)
		}
		f.values[name] = vals
	}
	if f.formType != "" && f.formType != want {
		return f, false, errf(stanza.BadRequest, "", "FORM_TYPE must be "+want)
	}
	return f, false, nil
}

// apply sets every submitted option on c (XEP-0004 §3.4: options left out
// keep their value). A field the service does not know, or a value it does
// not accept, refuses the whole form.
func (f submitted) apply(c *NodeConfig, fields []field, l Limits) *Error {
	next := *c
	for _, name := range f.order {
		fd, ok := lookupField(fields, name)
		if !ok {
			return errf(stanza.NotAcceptable, "", "unsupported option "+name)
		}
		if why := fd.set(&next, f.values[name], l); why != "" {
			return errf(stanza.NotAcceptable, "", name+": "+why)
		}
	}
	*c = next
	return nil
}

// preconditionsMet checks publish-options (XEP-0060 §7.1.5) against the
// node's configuration: every field must be an option the service knows
// with a value it accepts, equal to the node's.
func (f submitted) preconditionsMet(c NodeConfig, fields []field, l Limits) *Error {
	for _, name := range f.order {
		fd, ok := lookupField(fields, name)
		if !ok {
			return errf(stanza.Conflict, "precondition-not-met", "unsupported option "+name)
		}
		want := c
		if why := fd.set(&want, f.values[name], l); why != "" {
			return errf(stanza.Conflict, "precondition-not-met", name+": "+why)
		}
		same := fd.same
		if same == nil {
			same = func(a, b *NodeConfig, _ Limits) bool { return slices.Equal(fd.get(a), fd.get(b)) }
		}
		if !same(&want, &c, l) {
			return errf(stanza.Conflict, "precondition-not-met", name+" differs from the node's configuration")
		}
	}
	return nil
}

func lookupField(fields []field, name string) (field, bool) {
	for _, f := range fields {
		if f.name == name {
			return f, true
		}
	}
	return field{}, false
}
