/* Shared by the agent page and the wallboard: server clock, durations, actions, an SSE feed that
   reconnects with backoff, and small DOM helpers. Loaded before agent.js / wallboard.js. */
(function () {
  "use strict";

  function meta(name) {
    const el = document.querySelector('meta[name="' + name + '"]');
    return el ? el.content : "";
  }

  const csrf = meta("csrf-token");
  const pageTime = Number(meta("server-time"));
  let skew = pageTime ? pageTime - Date.now() : 0;

  function pad(n) {
    return n < 10 ? "0" + n : String(n);
  }

  function loginUrl() {
    return "/login?next=" + encodeURIComponent(location.pathname);
  }

  const Panel = {
    csrf: csrf,

    /** How agent states read on every page. */
    AGENT_STATES: {
      logged_out: "Logged out",
      ready: "Ready",
      ringing: "Ringing",
      on_call: "On call",
      wrap_up: "Wrap-up",
      paused: "Paused",
    },

    /** Milliseconds since the epoch on the server's clock (as far as we can tell). */
    now: function () {
      return Date.now() + skew;
    },

    setServerTime: function (iso) {
      const t = Panel.parse(iso);
      if (t !== null) skew = t - Date.now();
    },

    /** An ISO-8601 timestamp in ms, or null. Naive timestamps are taken as UTC. */
    parse: function (iso) {
      if (typeof iso !== "string" || !iso) return null;
      let text = iso.trim().replace(" ", "T").replace(/(\.\d{3})\d+/, "$1");
      if (/T\d\d:\d\d(:\d\d(\.\d+)?)?$/.test(text)) text += "Z";
      const t = Date.parse(text);
      return isNaN(t) ? null : t;
    },

    /** 75000 -> "1:15", 3725000 -> "1:02:05". */
    duration: function (ms) {
      const total = Math.max(0, Math.floor(ms / 1000));
      const h = Math.floor(total / 3600);
      const m = Math.floor((total % 3600) / 60);
      const s = total % 60;
      return h ? h + ":" + pad(m) + ":" + pad(s) : m + ":" + pad(s);
    },

    /** Seconds as a duration, "–" when unknown. */
    seconds: function (value) {
      return typeof value === "number" && isFinite(value) ? Panel.duration(value * 1000) : "–";
    },

    elapsed: function (iso) {
      const t = Panel.parse(iso);
      return t === null ? "" : Panel.duration(Panel.now() - t);
    },

    /** Local wall-clock time of a timestamp: "14:05" today, "3 Mar 14:05" before. */
    when: function (iso) {
      const t = Panel.parse(iso);
      if (t === null) return "";
      const d = new Date(t);
      const time = pad(d.getHours()) + ":" + pad(d.getMinutes());
      if (d.toDateString() === new Date().toDateString()) return time;
      return d.toLocaleDateString(undefined, { day: "numeric", month: "short" }) + " " + time;
    },

    setText: function (el, value) {
      const text = value === null || value === undefined ? "" : String(value);
      if (el && el.textContent !== text) el.textContent = text;
    },

    show: function (el, visible) {
      if (el && el.hidden === Boolean(visible)) el.hidden = !visible;
    },

    /** Creates an element: Panel.el("td", {className: "x", dataset: {id: 1}}, "text", child...). */
    el: function (tag, props) {
      const node = document.createElement(tag);
      Object.keys(props || {}).forEach(function (key) {
        if (key === "dataset") Object.assign(node.dataset, props.dataset);
        else node[key] = props[key];
      });
      for (let i = 2; i < arguments.length; i++) {
        const child = arguments[i];
        if (child === null || child === undefined) continue;
        node.append(child instanceof Node ? child : String(child));
      }
      return node;
    },

    /** Fills a select from [{value, label}], keeping the choice when it is still offered. */
    fillSelect: function (select, items, placeholder) {
      const signature = JSON.stringify([placeholder || "", items]);
      if (select.dataset.signature === signature) return;
      const keep = select.value;
      const options = items.map(function (item) {
        return new Option(item.label, item.value);
      });
      if (placeholder) options.unshift(new Option(placeholder, ""));
      select.replaceChildren.apply(select, options);
      if (items.some(function (item) { return item.value === keep; })) select.value = keep;
      select.dataset.signature = signature;
    },

    message: function (text, kind) {
      const el = document.getElementById("message");
      if (!el) return;
      Panel.setText(el, text || "");
      el.dataset.kind = kind || "error";
      Panel.show(el, Boolean(text));
    },

    /** POSTs {"action", "params"} with the CSRF token; shows the refusal and answers false. */
    post: async function (url, action, params) {
      let response;
      try {
        response = await fetch(url, {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
          body: JSON.stringify({ action: action, params: params || {} }),
        });
      } catch (err) {
        Panel.message("The controller cannot be reached; try again in a moment.");
        return false;
      }
      if (response.status === 401) {
        location.assign(loginUrl());
        return false;
      }
      let body = {};
      try {
        body = await response.json();
      } catch (err) {
        body = {};
      }
      if (!response.ok) {
        Panel.message(body.error || "The action failed (HTTP " + response.status + ").");
        return false;
      }
      Panel.message("");
      return true;
    },

    /** Runs an action from a button: disabled while it runs, then the page is drawn again. */
    act: async function (button, url, action, params, redraw) {
      if (button) button.disabled = true;
      try {
        return await Panel.post(url, action, params);
      } finally {
        if (button) button.disabled = false;
        if (redraw) redraw();
      }
    },

    /**
     * Follows an SSE stream: calls onData with each `eventName` message's JSON. On a break it asks
     * `checkUrl` (a 401 goes to the login page; a 200 is drawn), then reconnects after 1, 2, 4... 30 s.
     * `options.events` maps other event names to handlers of their JSON; `options.onOpen` runs at
     * every (re)connection.
     */
    feed: function (url, eventName, checkUrl, onData, options) {
      const extra = (options && options.events) || {};
      const onOpen = options && options.onOpen;
      const status = document.getElementById("connection");
      let source = null;
      let delay = 1000;
      let timer = null;

      function live(on) {
        if (!status) return;
        status.dataset.live = on ? "true" : "false";
        Panel.setText(status, on ? "Live" : "Reconnecting…");
      }

      function connect() {
        timer = null;
        source = new EventSource(url);
        source.addEventListener(eventName, function (event) {
          delay = 1000;
          live(true);
          let data;
          try {
            data = JSON.parse(event.data);
          } catch (err) {
            return;
          }
          onData(data);
        });
        Object.keys(extra).forEach(function (name) {
          source.addEventListener(name, function (event) {
            let data;
            try {
              data = JSON.parse(event.data);
            } catch (err) {
              return;
            }
            extra[name](data);
          });
        });
        source.addEventListener("notice", function (event) {
          try {
            Panel.message(JSON.parse(event.data).error || "");
          } catch (err) {
            /* a notice we cannot read says nothing */
          }
        });
        source.onopen = function () {
          live(true);
          if (onOpen) onOpen();
        };
        source.onerror = function () {
          source.close();
          live(false);
          retry();
        };
      }

      async function retry() {
        if (timer !== null) return;
        timer = -1;
        try {
          const response = await fetch(checkUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
          if (response.status === 401) {
            location.assign(loginUrl());
            return;
          }
          if (response.status === 403) {
            location.reload();
            return;
          }
          if (response.ok) onData(await response.json());
        } catch (err) {
          /* still down: wait and try again */
        }
        const wait = delay + Math.random() * delay * 0.5;
        delay = Math.min(delay * 2, 30000);
        timer = setTimeout(connect, wait);
      }

      window.addEventListener("pagehide", function () {
        if (source) source.close();
      });
      connect();
    },
  };

  window.Panel = Panel;
})();
