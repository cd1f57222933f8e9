/* The agent page: draws backend.agent_view() as it arrives on /api/agent/events and sends the
   agent's actions to /api/agent/action. Campaign calls add the next contact to preview (Dial / Skip),
   the contact's fields on the call card and, for a callback code, when to call back. Needs panel.js. */
(function () {
  "use strict";

  const P = window.Panel;
  const $ = function (id) {
    return document.getElementById(id);
  };
  const ACTION_URL = "/api/agent/action";
  const STATES = P.AGENT_STATES;
  const CALL_STATES = {
    ringing: "ringing",
    dialing: "dialling",
    connected: "connected",
    held: "on hold",
    consulting: "consulting",
  };
  const BUSY = ["ready", "ringing", "on_call"];

  let view = null;
  // Wrap-up codes whose campaign action is "callback" for the call being wrapped up.
  let callbackCodes = new Set();

  function list(value) {
    return Array.isArray(value) ? value : [];
  }

  function pad(n) {
    return n < 10 ? "0" + n : String(n);
  }

  /** A datetime-local value ("2026-12-01T14:30", the browser's local time) as ISO 8601 with the browser's
      UTC offset at that moment ("2026-12-01T14:30:00+01:00"); null when it is not a time. */
  function withOffset(local) {
    const m = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d)(?::(\d\d))?/.exec(local || "");
    if (!m) return null;
    const d = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6] || 0));
    if (isNaN(d.getTime())) return null;
    const offset = -d.getTimezoneOffset();
    const abs = Math.abs(offset);
    return (
      d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) +
      "T" + pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) +
      (offset < 0 ? "-" : "+") + pad(Math.floor(abs / 60)) + ":" + pad(abs % 60)
    );
  }

  /** Now, in the browser's local time, as a datetime-local value. */
  function localNow() {
    const d = new Date(P.now());
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" + pad(d.getHours()) + ":" + pad(d.getMinutes());
  }

  /** A contact's fields ([[name, value]...]) as table rows; the table is hidden when there are none. */
  function drawFields(table, fields) {
    const rows = list(fields).filter(function (f) {
      return Array.isArray(f) && f.length >= 2;
    });
    P.show(table, rows.length > 0);
    const body = table.tBodies[0];
    const signature = JSON.stringify(rows);
    if (body.dataset.signature === signature) return;
    body.dataset.signature = signature;
    body.replaceChildren.apply(
      body,
      rows.map(function (f) {
        return P.el("tr", { dataset: { field: String(f[0]) } }, P.el("th", { scope: "row" }, String(f[0])), P.el("td", {}, String(f[1])));
      })
    );
  }

  function reasonLabel(code) {
    const found = list(view && view.pause_reasons).find(function (r) {
      return r.code === code;
    });
    return found ? found.label : code;
  }

  function act(button, action, params) {
    return P.act(button, ACTION_URL, action, params, function () {
      if (view) render(view);
    });
  }

  function drawAgent(agent) {
    const state = agent.state || "logged_out";
    const stateEl = $("agent-state");
    stateEl.dataset.state = state;
    P.setText(stateEl, STATES[state] || state);
    P.setText($("agent-name"), agent.name || "");
    P.setText($("agent-extension"), agent.extension || "");
    P.setText($("agent-reason"), agent.reason ? reasonLabel(agent.reason) : "");
    P.setText($("calls-today"), Number(agent.calls_today) || 0);

    // The controller's note for the agent (a dropped session line, a transfer nobody answered) first.
    // It stays until the agent's next action, which clears it on the server.
    let notice = view && typeof view.message === "string" ? view.message : "";
    if (!notice && agent.awaiting_approval) {
      notice = "Waiting for a supervisor to approve your pause: " + reasonLabel(agent.awaiting_approval) + ".";
    } else if (!notice && agent.pending_pause) {
      notice = "You will pause (" + reasonLabel(agent.pending_pause) + ") when this call ends.";
    }
    P.setText($("agent-notice"), notice);
    P.show($("agent-notice"), Boolean(notice));

    const loggedOut = state === "logged_out";
    const pending = Boolean(agent.pending_pause || agent.awaiting_approval);
    $("btn-login").disabled = !loggedOut;
    $("btn-logout").disabled = loggedOut;
    $("btn-ready").disabled = loggedOut || (BUSY.indexOf(state) >= 0 && !pending);
    $("btn-pause").disabled = loggedOut || list(view.pause_reasons).length === 0;
    P.fillSelect(
      $("pause-reason"),
      list(view.pause_reasons).map(function (r) {
        return { value: r.code, label: r.needs_approval ? r.label + " (needs approval)" : r.label };
      })
    );
  }

  function drawHistory(history) {
    const body = $("call-history").tBodies[0];
    const signature = JSON.stringify(history);
    if (body.dataset.signature === signature) return;
    body.dataset.signature = signature;
    if (!history.length) {
      body.replaceChildren(P.el("tr", {}, P.el("td", { colSpan: 8, className: "muted" }, "No earlier interactions")));
      return;
    }
    body.replaceChildren.apply(
      body,
      history.map(function (h) {
        return P.el(
          "tr",
          {},
          P.el("td", {}, P.when(h.at)),
          P.el("td", {}, h.queue || "–"),
          P.el("td", {}, h.direction || ""),
          P.el("td", {}, h.outcome || ""),
          P.el("td", {}, h.agent || ""),
          P.el("td", {}, h.wrapup_code || ""),
          P.el("td", {}, h.note || ""),
          P.el("td", {}, localPath(h.recording) ? P.el("a", { href: localPath(h.recording), target: "_blank", rel: "noopener", className: "recording" }, "Listen") : "")
        );
      })
    );
  }

  /** A path on this site the server gave (a recording), or "" for anything else. */
  function localPath(value) {
    return typeof value === "string" && value.charAt(0) === "/" && value.charAt(1) !== "/" ? value : "";
  }

  function enc(value) {
    return encodeURIComponent(String(value === null || value === undefined ? "" : value));
  }

  /** The caller is a customer of the database (not only a name from a campaign list). */
  function knownCustomer(call) {
    return Boolean(call.customer && typeof call.customer.id === "number");
  }

  function newTicketUrl(call) {
    return "/tickets/new?call=" + enc(call.id);
  }

  function linkSearchUrl(call) {
    return "/customers/link?number=" + enc(call.number) + "&call=" + enc(call.id);
  }

  /** The customer's open tickets: a link each and, in the profile pane (``attach``), "Attach this call". */
  function drawTickets(box, ul, tickets, call, attach) {
    const rows = list(tickets).filter(function (t) {
      return t && (typeof t.id === "number" || typeof t.id === "string");
    });
    P.show(box, rows.length > 0);
    const signature = JSON.stringify([call.id, attach, rows]);
    if (ul.dataset.signature === signature) return;
    ul.dataset.signature = signature;
    ul.replaceChildren.apply(
      ul,
      rows.map(function (t) {
        const item = P.el(
          "li",
          { dataset: { ticket: String(t.id) } },
          P.el("a", { href: "/tickets/" + enc(t.id), target: "_blank", rel: "noopener" }, "#" + t.id + " " + (t.subject || "")),
          " ",
          P.el("span", { className: "muted" }, (t.status || "") + (t.updated_at ? " · " + P.when(t.updated_at) : ""))
        );
        if (attach) {
          item.append(
            " ",
            P.el(
              "form",
              { method: "post", action: "/tickets/" + enc(t.id) + "/attach-call", target: "_blank", className: "inline" },
              P.el("input", { type: "hidden", name: "csrf", value: P.csrf }),
              P.el("input", { type: "hidden", name: "call", value: String(call.id) }),
              P.el("button", { type: "submit", dataset: { testid: "attach-call" } }, "Attach this call")
            )
          );
        }
        return item;
      })
    );
  }

  /** The profile pane: opens by itself once the call is answered and stays through the wrap-up. */
  function drawPane(agent, call) {
    const pane = $("customer-pane");
    if (!call) {
      if (agent.state !== "wrap_up") {
        P.show(pane, false);
        pane.dataset.callId = "";
      }
      return;
    }
    if (call.state === "ringing") {
      P.show(pane, false);
      return;
    }
    P.show(pane, true);
    pane.dataset.callId = call.id;
    const known = knownCustomer(call);
    const customer = known ? call.customer : {};
    P.setText($("pane-name"), known ? customer.name : (call.customer && call.customer.name) || call.number || "Unknown caller");
    P.setText($("pane-id"), known ? "#" + customer.id : "");
    const rows = [];
    if (known) {
      rows.push(["Numbers", list(customer.phones).join(", ")], ["E-mail", customer.email], ["Company", customer.company]);
      list(customer.profile).forEach(function (f) {
        if (Array.isArray(f) && f.length >= 2) rows.push([f[0], f[1]]);
      });
      rows.push(["Notes", customer.note]);
    }
    const dl = $("pane-profile");
    const signature = JSON.stringify(rows);
    if (dl.dataset.signature !== signature) {
      dl.dataset.signature = signature;
      const items = [];
      rows.forEach(function (r) {
        items.push(P.el("dt", {}, String(r[0])), P.el("dd", {}, r[1] ? String(r[1]) : "–"));
      });
      dl.replaceChildren.apply(dl, items);
    }
    P.show($("pane-unknown"), !known && !call.campaign);
    P.show($("pane-open-profile"), known);
    if (known) $("pane-open-profile").href = "/customers/" + enc(customer.id);
    P.show($("pane-search-customer"), !known);
    $("pane-search-customer").href = linkSearchUrl(call);
    $("pane-new-ticket").href = newTicketUrl(call);
    drawTickets($("pane-tickets"), $("pane-ticket-list"), known ? call.tickets : [], call, true);
  }

  function drawTransfer(call) {
    const kind = $("transfer-kind").value;
    const targets = (view.transfer_targets && list(view.transfer_targets[kind])) || [];
    P.fillSelect(
      $("transfer-target"),
      targets.map(function (t) {
        return { value: String(t.id), label: t.label };
      })
    );
    const attended = $("transfer-mode").querySelector('option[value="attended"]');
    attended.disabled = kind !== "agent";
    if (kind !== "agent") $("transfer-mode").value = "blind";
    const consulting = Boolean(call.consult);
    $("btn-transfer").disabled = consulting || !targets.length;
    P.show($("consult"), consulting);
    if (consulting) {
      P.setText($("consult-target"), call.consult.target);
      P.setText($("consult-state"), call.consult.state);
    }
  }

  /** The REC indicator and the pause/resume buttons, while the call is recorded. */
  function drawRecording(recording) {
    const active = Boolean(recording && recording.active);
    const paused = active && Boolean(recording.paused);
    const rec = $("call-rec");
    P.show(rec, active);
    rec.dataset.paused = paused ? "true" : "false";
    P.setText(rec, paused ? "REC paused" : "REC");
    P.show($("btn-record-pause"), active && !paused);
    P.show($("btn-record-resume"), paused);
  }

  /** The contact a preview campaign offers, while the agent has no call and is not wrapping up. */
  function drawPreview(agent, preview) {
    const state = agent.state || "logged_out";
    const shown = Boolean(preview && typeof preview === "object") && !view.call && (state === "ready" || state === "paused");
    P.show($("preview-card"), shown);
    if (!shown) return;
    $("preview-card").dataset.number = preview.number || "";
    P.setText($("preview-campaign"), preview.campaign || "");
    P.setText($("preview-number"), preview.number || "");
    P.setText($("preview-name"), preview.name || "");
    P.setText($("preview-attempts"), Number(preview.attempts) || 0);
    P.show($("preview-callback"), preview.callback === true);
    const fields = preview.fields && typeof preview.fields === "object" ? preview.fields : {};
    drawFields(
      $("preview-fields"),
      Object.keys(fields).map(function (name) {
        return [name, fields[name]];
      })
    );
  }

  function drawCall(call) {
    P.show($("call-card"), Boolean(call));
    if (!call) return;
    const card = $("call-card");
    card.dataset.callId = call.id;
    card.dataset.state = call.state;
    P.setText($("call-number"), call.number || "Unknown number");
    P.setText($("call-customer"), call.customer && call.customer.name ? call.customer.name : "Unknown caller");
    P.setText($("call-note"), call.customer && call.customer.note ? call.customer.note : "");
    const known = knownCustomer(call);
    const contact = known ? [call.customer.email, call.customer.company].filter(Boolean).join(" · ") : "";
    P.setText($("call-contact"), contact);
    P.show($("call-contact"), Boolean(contact));
    P.show($("call-unknown"), !known && !call.campaign);
    $("link-search-customer").href = linkSearchUrl(call);
    $("link-new-ticket-unknown").href = newTicketUrl(call);
    drawTickets($("call-tickets"), $("call-ticket-list"), known ? call.tickets : [], call, false);
    P.setText($("call-queue"), call.queue || "–");
    P.show($("call-campaign-line"), Boolean(call.campaign));
    P.setText($("call-campaign"), call.campaign || "");
    drawFields($("call-fields"), call.contact_fields);
    P.setText($("call-state"), CALL_STATES[call.state] || call.state);
    P.setText($("call-direction"), call.direction || "");
    P.show($("btn-hold"), call.state !== "held");
    P.show($("btn-unhold"), call.state === "held");
    $("btn-hold").disabled = call.state !== "connected";
    drawRecording(call.recording);
    drawHistory(list(call.history));
    drawTransfer(call);
  }

  function drawWrapup(agent, lastCall) {
    const form = $("wrapup-form");
    const open = agent.state === "wrap_up" || Boolean(lastCall && !lastCall.wrapup_code);
    P.show(form, open);
    P.fillSelect(
      $("wrapup-code"),
      list(view.wrapup_codes).map(function (c) {
        return { value: c.code, label: c.label };
      }),
      "Choose an outcome…"
    );
    const callId = lastCall ? String(lastCall.id) : "";
    if (form.dataset.callId !== callId) {
      form.dataset.callId = callId;
      $("wrapup-note").value = lastCall && lastCall.note ? lastCall.note : "";
      $("wrapup-code").value = lastCall && lastCall.wrapup_code ? lastCall.wrapup_code : "";
      $("wrapup-callback-at").value = "";
      $("wrapup-callback-mine").checked = false;
    }
    P.setText($("wrapup-call"), lastCall ? lastCall.number : "");
    // The codes of the call AcdService.wrapup codes: the agent's connected call, else the last one.
    const target = view.call && agent.state === "on_call" ? view.call : lastCall;
    callbackCodes = new Set(
      list(target && target.campaign ? target.dispositions : [])
        .filter(function (d) {
          return d && d.action === "callback";
        })
        .map(function (d) {
          return d.code;
        })
    );
    drawCallbackChoice();
  }

  /** "Call back at" and "Only me", for a campaign call's callback code. */
  function drawCallbackChoice() {
    const shown = callbackCodes.has($("wrapup-code").value);
    P.show($("wrapup-callback"), shown);
    $("wrapup-callback-at").required = shown;
    if (shown) $("wrapup-callback-at").min = localNow();
  }

  function drawCallbacks(callbacks) {
    const body = $("callbacks").tBodies[0];
    const signature = JSON.stringify(callbacks);
    if (body.dataset.signature === signature) return;
    body.dataset.signature = signature;
    if (!callbacks.length) {
      body.replaceChildren(P.el("tr", {}, P.el("td", { colSpan: 6, className: "muted" }, "No callbacks")));
      return;
    }
    body.replaceChildren.apply(
      body,
      callbacks.map(function (cb) {
        const call = P.el("button", { type: "button", className: "primary", dataset: { testid: "callback-call" } }, "Call back");
        const remove = P.el("button", { type: "button", dataset: { testid: "callback-remove" } }, "Remove");
        call.addEventListener("click", function () {
          act(call, "callback_call", { id: String(cb.id) });
        });
        remove.addEventListener("click", function () {
          act(remove, "callback_remove", { id: String(cb.id) });
        });
        return P.el(
          "tr",
          { dataset: { id: String(cb.id) } },
          P.el("td", { className: "number" }, cb.number || ""),
          P.el("td", {}, cb.name || ""),
          P.el("td", {}, cb.reason || ""),
          P.el("td", { className: "count" }, Number(cb.count) || 0),
          P.el("td", {}, P.when(cb.last_at)),
          P.el("td", { className: "actions" }, call, " ", remove)
        );
      })
    );
  }

  /** The kept phone line of a session-mode campaign: being called, or open (with no ring per call). */
  function drawSession(session) {
    const shown = Boolean(session && typeof session === "object");
    P.show($("session-line"), shown);
    if (!shown) return;
    $("session-line").dataset.state = session.state === "connected" ? "connected" : "calling";
    P.setText(
      $("session-text"),
      session.state === "connected"
        ? "Line open for " + (session.label || "") + ": calls are put through to you with a beep; hang up with the button, not the phone."
        : "Calling your phone for " + (session.label || "") + ": answer it to start taking calls."
    );
  }

  function render(next) {
    if (!next || typeof next !== "object") return;
    view = next;
    const agent = view.agent || {};
    drawAgent(agent);
    drawSession(view.session || null);
    drawPreview(agent, view.preview || null);
    drawCall(view.call || null);
    drawPane(agent, view.call || null);
    drawWrapup(agent, view.last_call || null);
    drawCallbacks(list(view.callbacks));
    tick();
  }

  function tick() {
    if (!view) return;
    const agent = view.agent || {};
    P.setText($("time-in-state"), P.elapsed(agent.since));
    if (view.session) P.setText($("session-since"), P.elapsed(view.session.since));
    if (view.call) P.setText($("call-since"), P.elapsed(view.call.since));
    const deadline = P.parse(agent.wrapup_deadline);
    P.setText($("wrapup-deadline"), deadline === null ? "" : "ends in " + P.duration(deadline - P.now()));
  }

  function wire() {
    $("btn-login").addEventListener("click", function (e) {
      act(e.currentTarget, "login");
    });
    $("btn-logout").addEventListener("click", function (e) {
      act(e.currentTarget, "logout");
    });
    $("btn-ready").addEventListener("click", function (e) {
      act(e.currentTarget, "ready");
    });
    $("btn-pause").addEventListener("click", function (e) {
      const reason = $("pause-reason").value;
      if (!reason) {
        P.message("Choose a pause reason first.");
        return;
      }
      act(e.currentTarget, "pause", { reason: reason });
    });
    $("btn-hangup").addEventListener("click", function (e) {
      act(e.currentTarget, "hangup");
    });
    $("btn-hold").addEventListener("click", function (e) {
      act(e.currentTarget, "hold");
    });
    $("btn-unhold").addEventListener("click", function (e) {
      act(e.currentTarget, "unhold");
    });
    $("btn-record-pause").addEventListener("click", function (e) {
      act(e.currentTarget, "record_pause");
    });
    $("btn-record-resume").addEventListener("click", function (e) {
      act(e.currentTarget, "record_resume");
    });
    $("btn-transfer-complete").addEventListener("click", function (e) {
      act(e.currentTarget, "transfer_complete");
    });
    $("btn-transfer-cancel").addEventListener("click", function (e) {
      act(e.currentTarget, "transfer_cancel");
    });
    $("transfer-kind").addEventListener("change", function () {
      if (view && view.call) drawTransfer(view.call);
    });
    $("transfer-form").addEventListener("submit", function (e) {
      e.preventDefault();
      const target = $("transfer-target").value;
      if (!target) {
        P.message("Choose where to transfer the call.");
        return;
      }
      act($("btn-transfer"), "transfer", {
        mode: $("transfer-mode").value,
        kind: $("transfer-kind").value,
        target: target,
      });
    });
    $("wrapup-form").addEventListener("submit", async function (e) {
      e.preventDefault();
      const code = $("wrapup-code").value;
      if (!code) {
        P.message("Choose an outcome for the call.");
        return;
      }
      const params = { code: code, note: $("wrapup-note").value };
      if (callbackCodes.has(code)) {
        const at = withOffset($("wrapup-callback-at").value);
        if (!at) {
          P.message("Pick when to call back.");
          return;
        }
        params.callback_at = at;
        params.callback_mine = $("wrapup-callback-mine").checked ? "1" : "";
      }
      const done = await act($("wrapup-submit"), "wrapup", params);
      if (done) {
        $("wrapup-note").value = "";
        $("wrapup-callback-at").value = "";
        $("wrapup-callback-mine").checked = false;
      }
    });
    $("wrapup-code").addEventListener("change", drawCallbackChoice);
    $("btn-preview-dial").addEventListener("click", function (e) {
      act(e.currentTarget, "preview_dial");
    });
    $("btn-preview-skip").addEventListener("click", function (e) {
      act(e.currentTarget, "preview_skip");
    });
    $("dial-form").addEventListener("submit", async function (e) {
      e.preventDefault();
      const number = $("dial-number").value.trim();
      if (!number) return;
      const done = await act($("btn-dial"), "dial", { number: number });
      if (done) $("dial-number").value = "";
    });
  }

  wire();
  setInterval(tick, 1000);
  P.feed("/api/agent/events", "view", "/api/agent", render);
})();
