/* The wallboard: draws backend.wallboard() as it arrives on /api/wallboard/events; ticks the waits
   and times in state every second; supervisors approve or deny pauses, log agents out and monitor live
   calls (listen, whisper, three-way: the controller rings their phone), and start and stop the outbound
   dialer's campaigns. The same stream sends `event: monitor` with the supervisor's own session
   (monitor_view) when it changes. Needs panel.js. */
(function () {
  "use strict";

  const P = window.Panel;
  const $ = function (id) {
    return document.getElementById(id);
  };
  const ACTION_URL = "/api/supervisor/action";
  const MONITOR_URL = "/api/supervisor/monitor";
  const STATES = P.AGENT_STATES;
  const HEADERS = ["Ext", "Name", "State", "Reason", "Time", "Calls", ""];
  const wide = window.matchMedia("(min-width: 1100px)");

  const MODES = { silent: "Listen", whisper: "Whisper", barge: "Three-way" };
  const DIRECTIONS = { inbound: "Inbound", outbound: "Outbound", callback: "Callback", dialer: "Dialer", direct: "Direct" };
  const CAMPAIGN_MODES = { preview: "Preview", progressive: "Progressive", predictive: "Predictive" };
  const NO_MONITOR = { session: null, can_monitor: false };

  let board = null;
  let monitor = NO_MONITOR;
  // Counts the stream's monitor events: a fetched view older than the latest event must not overwrite it.
  let monitorEvents = 0;

  function list(value) {
    return Array.isArray(value) ? value : [];
  }

  function number(value) {
    return typeof value === "number" && isFinite(value) ? value : null;
  }

  function act(button, action, params) {
    return P.act(button, ACTION_URL, action, params, null);
  }

  function stat(label, cls) {
    return P.el("div", { className: "stat" }, P.el("span", { className: "label" }, label), P.el("span", { className: cls }));
  }

  function newTile(name) {
    return P.el(
      "article",
      { className: "queue-tile", dataset: { queue: name } },
      P.el("h2", { className: "name" }, name),
      P.el("div", { className: "big waiting-box" }, P.el("span", { className: "waiting" }), P.el("span", { className: "label" }, "waiting")),
      P.el("div", { className: "big" }, P.el("span", { className: "longest-wait" }), P.el("span", { className: "label" }, "longest wait")),
      P.el("div", { className: "big" }, P.el("span", { className: "service-level" }), P.el("span", { className: "label sl-label" }, "service level")),
      P.el(
        "div",
        { className: "stats" },
        stat("offered", "offered"),
        stat("answered", "answered"),
        stat("abandoned", "abandoned"),
        stat("avg wait", "avg-wait"),
        stat("avg talk", "avg-talk")
      )
    );
  }

  function drawQueues(queues) {
    const box = $("queues");
    const seen = new Set();
    queues.forEach(function (q) {
      const name = String(q.name);
      seen.add(name);
      let tile = box.querySelector('.queue-tile[data-queue="' + CSS.escape(name) + '"]');
      if (!tile) tile = newTile(name);
      box.append(tile);
      const find = function (cls) {
        return tile.querySelector("." + cls);
      };
      P.setText(find("waiting"), number(q.waiting) === null ? "–" : q.waiting);
      const sl = number(q.service_level);
      P.setText(find("service-level"), sl === null ? "–" : Math.round(sl) + "%");
      tile.dataset.sl = sl === null ? "none" : sl >= 80 ? "good" : sl >= 60 ? "warn" : "bad";
      P.setText(find("sl-label"), q.service_level_seconds ? "answered in " + q.service_level_seconds + " s" : "service level");
      P.setText(find("offered"), number(q.offered) === null ? "–" : q.offered);
      P.setText(find("answered"), number(q.answered) === null ? "–" : q.answered);
      P.setText(find("abandoned"), number(q.abandoned) === null ? "–" : q.abandoned);
      P.setText(find("avg-wait"), P.seconds(q.avg_wait));
      P.setText(find("avg-talk"), P.seconds(q.avg_talk));
    });
    Array.from(box.querySelectorAll(".queue-tile")).forEach(function (tile) {
      if (!seen.has(tile.dataset.queue)) tile.remove();
    });
    box.dataset.count = String(queues.length);
  }

  function drawHead(cols) {
    const head = $("agents").tHead;
    if (head.dataset.cols === String(cols)) return;
    head.dataset.cols = String(cols);
    const rows = [];
    for (let i = 0; i < cols; i++) {
      rows.push(P.el.apply(null, ["tr", {}].concat(HEADERS.map(function (h) { return P.el("th", {}, h); }))));
    }
    head.replaceChildren.apply(head, rows);
  }

  function newRow(agent) {
    const logout = P.el("button", { type: "button", className: "small", dataset: { testid: "logout-agent" } }, "Log out");
    logout.addEventListener("click", function () {
      const row = logout.closest("tr");
      if (window.confirm("Log out " + row.dataset.name + "?")) {
        act(logout, "logout_agent", { agent_id: row.dataset.agentId });
      }
    });
    return P.el(
      "tr",
      { dataset: { extension: String(agent.extension) } },
      P.el("td", { className: "ext" }),
      P.el("td", { className: "name" }),
      P.el("td", {}, P.el("span", { className: "state" })),
      P.el("td", { className: "reason" }),
      P.el("td", { className: "time-in-state" }),
      P.el("td", { className: "calls-today" }),
      P.el("td", { className: "actions" }, logout)
    );
  }

  function drawAgents(agents) {
    const table = $("agents");
    const body = table.tBodies[0];
    const cols = wide.matches ? (agents.length > 36 ? 3 : 2) : 1;
    table.style.setProperty("--agent-cols", String(cols));
    table.style.setProperty("--agent-rows", String(Math.max(1, Math.ceil(agents.length / cols))));
    drawHead(cols);
    const seen = new Set();
    agents.forEach(function (a) {
      const ext = String(a.extension);
      seen.add(ext);
      let row = body.querySelector('tr[data-extension="' + CSS.escape(ext) + '"]');
      if (!row) row = newRow(a);
      body.append(row);
      row.dataset.agentId = String(a.id);
      row.dataset.name = a.name || ext;
      row.dataset.since = a.since || "";
      row.dataset.state = a.state || "";
      const cell = function (cls) {
        return row.querySelector("." + cls);
      };
      P.setText(cell("ext"), ext);
      P.setText(cell("name"), a.name || "");
      P.setText(cell("state"), STATES[a.state] || a.state || "");
      cell("state").dataset.state = a.state || "";
      // Ready for the ACD but on a call of their own (not through the ACD): "On call", and with whom.
      const direct = a.direct_call || null;
      row.dataset.direct = direct ? "true" : "false";
      P.setText(cell("reason"), direct ? "Direct call" + (direct.number ? " " + direct.number : "") : a.reason || "");
      P.setText(cell("calls-today"), number(a.calls_today) === null ? "–" : a.calls_today);
      row.querySelector("button").disabled = a.state === "logged_out";
    });
    Array.from(body.rows).forEach(function (row) {
      if (!seen.has(row.dataset.extension)) row.remove();
    });
  }

  function drawApprovals(approvals) {
    const box = $("approvals");
    const ul = box.querySelector("ul");
    P.show(box, approvals.length > 0);
    const signature = JSON.stringify(approvals);
    if (ul.dataset.signature === signature) return;
    ul.dataset.signature = signature;
    ul.replaceChildren.apply(
      ul,
      approvals.map(function (ap) {
        const approve = P.el("button", { type: "button", className: "good", dataset: { testid: "approve-pause" } }, "Approve");
        const deny = P.el("button", { type: "button", className: "bad", dataset: { testid: "deny-pause" } }, "Deny");
        approve.addEventListener("click", function () {
          act(approve, "approve_pause", { agent_id: String(ap.agent_id) });
        });
        deny.addEventListener("click", function () {
          act(deny, "deny_pause", { agent_id: String(ap.agent_id) });
        });
        return P.el(
          "li",
          { dataset: { agentId: String(ap.agent_id) } },
          P.el("b", {}, ap.name || ""),
          " wants to pause: ",
          P.el("span", { className: "reason" }, ap.reason || ""),
          " ",
          P.el("span", { className: "since timer", dataset: { since: ap.since || "" } }),
          " ",
          approve,
          deny
        );
      })
    );
  }

  function newCallRow(ext) {
    const buttons = Object.keys(MODES).map(function (mode) {
      const button = P.el("button", { type: "button", className: "small", dataset: { testid: "monitor-" + mode } }, MODES[mode]);
      button.addEventListener("click", function () {
        monitorAct(button, "monitor_start", { extension: ext, mode: mode });
      });
      return button;
    });
    return P.el(
      "tr",
      { dataset: { extension: ext } },
      P.el("td", { className: "agent" }),
      P.el("td", { className: "number" }),
      P.el("td", { className: "queue" }),
      P.el("td", { className: "direction" }),
      P.el("td", { className: "since timer" }),
      P.el("td", { className: "monitored-by" }),
      P.el.apply(null, ["td", { className: "monitor-actions" }].concat(buttons))
    );
  }

  function drawCalls(calls) {
    const box = $("live-calls");
    const body = box.querySelector("tbody");
    // Only for supervisors who may monitor: a wall screen's account (no phone) keeps its layout, and the
    // room does not read who is being listened to.
    P.show(box, calls.length > 0 && monitor.can_monitor === true);
    const mine = monitor.session ? String(monitor.session.agent) : "";
    const seen = new Set();
    calls.forEach(function (c) {
      const ext = String(c.agent);
      seen.add(ext);
      let row = body.querySelector('tr[data-extension="' + CSS.escape(ext) + '"]');
      if (!row) row = newCallRow(ext);
      body.append(row);
      row.dataset.since = c.since || "";
      row.dataset.mine = ext === mine ? "true" : "false";
      const cell = function (cls) {
        return row.querySelector("." + cls);
      };
      P.setText(cell("agent"), (c.agent_name ? c.agent_name + " " : "") + "(" + ext + ")");
      P.setText(cell("number"), c.number || "–");
      P.setText(cell("queue"), c.queue || "–");
      P.setText(cell("direction"), DIRECTIONS[c.direction] || c.direction || "");
      P.setText(cell("monitored-by"), list(c.monitored_by).join(", "));
    });
    Array.from(body.rows).forEach(function (row) {
      if (!seen.has(row.dataset.extension)) row.remove();
    });
  }

  function newCampaignRow(name) {
    const start = P.el("button", { type: "button", className: "small good", dataset: { testid: "campaign-start" } }, "Start");
    const stop = P.el("button", { type: "button", className: "small bad", dataset: { testid: "campaign-stop" } }, "Stop");
    start.addEventListener("click", function () {
      // Over its abandon target, the figures are shown and the "yes" is sent with the action.
      const c = list(board && board.campaigns).find(function (row) { return row && row.name === name; }) || {};
      const over = abandonCells(c).filter(function (span) { return span.dataset.over === "true"; });
      const question = over.length
        ? "Campaign " + name + " is over its abandon target of " + c.target + "%: " +
          over.map(function (span) { return span.textContent; }).join(", ") +
          ". While it is, the dialer places fewer calls than there are free agents. Start it anyway?"
        : "Start campaign " + name + "? The dialer begins calling at once.";
      if (window.confirm(question)) {
        act(start, "campaign_start", over.length ? { name: name, confirm: "true" } : { name: name });
      }
    });
    stop.addEventListener("click", function () {
      if (window.confirm("Stop campaign " + name + "? Calls in progress go on.")) {
        act(stop, "campaign_stop", { name: name });
      }
    });
    return P.el(
      "tr",
      { dataset: { campaign: name } },
      P.el("td", { className: "name" }, name),
      P.el("td", { className: "mode" }),
      P.el("td", {}, P.el("span", { className: "running" })),
      P.el("td", { className: "agents" }),
      P.el("td", { className: "dialing" }),
      P.el("td", { className: "waiting" }),
      P.el("td", { className: "abandon" }),
      P.el("td", { className: "campaign-actions" }, start, stop)
    );
  }

  /** A campaign's abandon rate per window (a share of 0..1) against its target (a percentage). */
  function abandonCells(c) {
    const target = number(c.target);
    const windows = c.abandon && typeof c.abandon === "object" ? c.abandon : {};
    return Object.keys(windows).map(function (name) {
      const w = windows[name] || {};
      const rate = number(w.rate);
      const percent = rate === null ? null : rate * 100;
      const over = percent !== null && target !== null && percent > target;
      return P.el(
        "span",
        {
          className: "window",
          title: (number(w.abandoned) || 0) + " abandoned of " + (number(w.answered) || 0) + " answered",
          dataset: { window: name, over: over ? "true" : "false" },
        },
        name + " " + (percent === null ? "–" : percent.toFixed(1) + "%")
      );
    });
  }

  function drawCampaigns(campaigns) {
    const box = $("campaigns");
    const body = box.querySelector("tbody");
    P.show(box, campaigns.length > 0);
    const seen = new Set();
    campaigns.forEach(function (c) {
      const name = String(c.name);
      seen.add(name);
      let row = body.querySelector('tr[data-campaign="' + CSS.escape(name) + '"]');
      if (!row) row = newCampaignRow(name);
      body.append(row);
      const running = c.running === true;
      row.dataset.running = running ? "true" : "false";
      const cell = function (cls) {
        return row.querySelector("." + cls);
      };
      P.setText(cell("mode"), CAMPAIGN_MODES[c.mode] || c.mode || "");
      P.setText(cell("running"), running ? "Running" : "Stopped");
      cell("running").dataset.running = running ? "true" : "false";
      const ready = number(c.ready);
      const agents = number(c.agents);
      P.setText(cell("agents"), (ready === null ? "–" : ready) + " / " + (agents === null ? "–" : agents));
      P.setText(cell("dialing"), number(c.dialing) === null ? "–" : c.dialing);
      P.setText(cell("waiting"), number(c.waiting) === null ? "–" : c.waiting);
      const abandon = cell("abandon");
      const signature = JSON.stringify([c.abandon, c.target, c.brake]);
      if (abandon.dataset.signature !== signature) {
        abandon.dataset.signature = signature;
        const target = number(c.target);
        const parts = abandonCells(c);
        // The pacer's brake over the target, in its words ("... dialling 1 call per 2 free agents").
        const brake = c.brake ? [P.el("span", { className: "brake" }, String(c.brake))] : [];
        abandon.replaceChildren.apply(
          abandon,
          parts.concat(target === null ? [] : [P.el("span", { className: "target" }, "target " + target + "%")], brake)
        );
        abandon.dataset.over = parts.some(function (span) { return span.dataset.over === "true"; }) ? "true" : "false";
      }
      P.show(row.querySelector('[data-testid="campaign-start"]'), !running);
      P.show(row.querySelector('[data-testid="campaign-stop"]'), running);
    });
    Array.from(body.rows).forEach(function (row) {
      if (!seen.has(row.dataset.campaign)) row.remove();
    });
  }

  function drawMonitor(view) {
    monitor = view && typeof view === "object" ? view : NO_MONITOR;
    const session = monitor.session && typeof monitor.session === "object" ? monitor.session : null;
    const bar = $("monitor-bar");
    P.show(bar, session !== null);
    if (session) {
      bar.dataset.state = session.state || "";
      bar.dataset.mode = session.mode || "";
      P.setText($("monitor-agent"), (session.agent_name ? session.agent_name + " " : "") + "(" + session.agent + ")");
      P.setText($("monitor-mode"), MODES[session.mode] || session.mode || "");
      P.setText($("monitor-state"), session.state === "ringing" ? "Ringing your phone…" : "");
      bar.querySelectorAll("button[data-mode]").forEach(function (button) {
        button.setAttribute("aria-pressed", button.dataset.mode === session.mode ? "true" : "false");
      });
    }
    if (board) drawCalls(list(board.live_calls));
  }

  function monitorAct(button, action, params) {
    return P.act(button, ACTION_URL, action, params, refreshMonitor);
  }

  /** Asks for the supervisor's session at once (after an action; the stream also sends its changes). */
  async function refreshMonitor() {
    const seen = monitorEvents;
    try {
      const response = await fetch(MONITOR_URL, { credentials: "same-origin", headers: { Accept: "application/json" } });
      const view = response.ok ? await response.json() : null;
      if (view !== null && seen === monitorEvents) drawMonitor(view);
    } catch (err) {
      /* the stream brings the next change */
    }
  }

  $("monitor-bar").querySelectorAll("button[data-mode]").forEach(function (button) {
    button.addEventListener("click", function () {
      monitorAct(button, "monitor_mode", { mode: button.dataset.mode });
    });
  });
  $("btn-monitor-stop").addEventListener("click", function () {
    monitorAct($("btn-monitor-stop"), "monitor_stop", {});
  });

  function drawTotals(data) {
    const agents = list(data.agents);
    const count = function (states) {
      return agents.filter(function (a) { return states.indexOf(a.state) >= 0; }).length;
    };
    P.setText($("total-waiting"), list(data.queues).reduce(function (n, q) { return n + (number(q.waiting) || 0); }, 0));
    P.setText($("total-ready"), count(["ready"]));
    P.setText($("total-on-call"), count(["ringing", "on_call", "wrap_up"]));
    P.setText($("total-paused"), count(["paused"]));
  }

  let scopeNotice = "";

  function render(data) {
    if (!data || typeof data !== "object") return;
    board = data;
    // A supervisor with no unit in scope is told why the board is empty (textContent: never markup).
    const notice = typeof data.notice === "string" ? data.notice : "";
    if (notice !== scopeNotice) {
      P.message(notice, "error");
      scopeNotice = notice;
    }
    drawQueues(list(data.queues));
    drawAgents(list(data.agents));
    drawApprovals(list(data.approvals));
    drawCampaigns(list(data.campaigns));
    drawCalls(list(data.live_calls));
    drawTotals(data);
    tick();
  }

  function tick() {
    const now = new Date(P.now());
    P.setText($("clock"), now.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
    if (!board) return;
    list(board.queues).forEach(function (q) {
      const tile = $("queues").querySelector('.queue-tile[data-queue="' + CSS.escape(String(q.name)) + '"]');
      if (!tile) return;
      const oldest = P.parse(q.oldest_since);
      const waited = oldest === null ? null : P.now() - oldest;
      P.setText(tile.querySelector(".longest-wait"), waited === null ? "–" : P.duration(waited));
      const limit = number(q.service_level_seconds) || 0;
      tile.dataset.alert = waited !== null && limit > 0 && waited > limit * 1000 ? "true" : "false";
    });
    Array.from($("agents").tBodies[0].rows).forEach(function (row) {
      P.setText(row.querySelector(".time-in-state"), P.elapsed(row.dataset.since));
    });
    Array.from($("approvals").querySelectorAll(".since")).forEach(function (el) {
      P.setText(el, P.elapsed(el.dataset.since));
    });
    Array.from($("live-calls").querySelector("tbody").rows).forEach(function (row) {
      P.setText(row.querySelector(".since"), P.elapsed(row.dataset.since));
    });
  }

  wide.addEventListener("change", function () {
    if (board) drawAgents(list(board.agents));
  });
  setInterval(tick, 1000);
  P.feed("/api/wallboard/events", "wallboard", "/api/wallboard", render, {
    events: {
      monitor: function (view) {
        monitorEvents += 1;
        drawMonitor(view);
      },
    },
    // Each connection starts from "no session" and is told only what differs from it.
    onOpen: function () {
      monitorEvents += 1;
      drawMonitor(NO_MONITOR);
    },
  });
})();
