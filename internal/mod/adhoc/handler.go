package adhoc

import (
	"errors"

	"parley/internal/module"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// handle answers <command/> IQs to the host (XEP-0050 §3, §4).
func (a *Adhoc) handle(ev *module.StanzaEvent, cmd *xml.Element) *xml.Element {
	if cmd.Local != "command" {
		return stanza.ErrorReply(ev.Stanza, stanza.BadRequest, "")
	}
	node := cmd.Attr("node")
	c, ok := a.cmds.get(node)
	if !ok {
		return stanza.ErrorReply(ev.Stanza, stanza.ItemNotFound, "no such command")
	}
	if !c.allowed(ev.Ctx, ev.From) {
		a.h.Log.Info("adhoc: command refused by the access policy", "node", node, "user", ev.From.Bare().String())
		return stanza.ErrorReply(ev.Stanza, stanza.Forbidden, "you may not run this command")
	}
	action := cmd.Attr("action")
	if action == "" {
		action = "execute"
	}
	switch action {
	case "execute", "next", "complete", "cancel":
	default:
		// prev is valid XEP-0050 but none of these commands goes back.
		return appError(ev.Stanza, stanza.BadRequest, "bad-action", "unsupported action "+action)
	}
	id := cmd.Attr("sessionid")
	var state any
	if id != "" {
		ss, err := a.sessions.take(id, ev.From, node)
		switch {
		case errors.Is(err, errExpired):
			return appError(ev.Stanza, stanza.NotAllowed, "session-expired", "the command session expired; start again")
		case err != nil:
			return appError(ev.Stanza, stanza.BadRequest, "bad-sessionid", "")
		}
		state = ss.state
	} else if action != "execute" {
		return appError(ev.Stanza, stanza.BadRequest, "bad-sessionid", "no session to "+action)
	}
	if action == "cancel" {
		return stanza.IQResult(ev.Stanza, xml.New(NS, "command").SetAttr("node", node).
			SetAttr("sessionid", id).SetAttr("status", StatusCanceled))
	}
	form := parseForm(cmd)
	if form != nil && form.Type != "submit" {
		return stanza.ErrorReply(ev.Stanza, stanza.BadRequest, "the data form must be of type submit")
	}
	resp := c.Run(&Request{Ctx: ev.Ctx, From: ev.From, Action: action, Form: form, State: state})
	if resp.Err != nil {
		return stanza.ErrorReplyFor(ev.Stanza, resp.Err)
	}
	out := xml.New(NS, "command").SetAttr("node", node)
	if resp.Status == StatusExecuting {
		nid, err := a.sessions.put(id, ev.From, node, resp.State)
		if err != nil {
			return stanza.ErrorReply(ev.Stanza, stanza.ResourceConstraint, err.Error())
		}
		out.SetAttr("sessionid", nid).SetAttr("status", StatusExecuting)
		out.Append(xml.New(NS, "actions").SetAttr("execute", "complete").Append(xml.New(NS, "complete")))
	} else {
		if id == "" {
			id = newID()
		}
		out.SetAttr("sessionid", id).SetAttr("status", StatusCompleted)
	}
	if resp.Note != "" {
		typ := resp.NoteType
		if typ == "" {
			typ = "info"
		}
		out.Append(xml.New(NS, "note").SetAttr("type", typ).AppendText(resp.Note))
	}
	if resp.Form != nil {
		out.Append(resp.Form)
	}
	return stanza.IQResult(ev.Stanza, out)
}
