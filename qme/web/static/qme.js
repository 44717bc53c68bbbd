// qme dashboard: what every page shares (live connection, notices, actions, formats).
// Task data is only ever put into the page as text (textContent), never as markup.
"use strict";

const qme = (() => {
  const $ = (selector, root = document) => root.querySelector(selector);
  const STATUSES = ["pending", "running", "complete", "failed", "cancelled", "timeout", "lost"];
  // Not finished: it can still be cancelled, and not yet deleted.
  const active = (task) => task.status === "running" || task.status === "pending";

  function node(tag, className, text) {
    const element = document.createElement(tag);
    if (className) element.className = className;
    if (text !== undefined && text !== null) element.textContent = String(text);
    return element;
  }

  function taskUrl(id) {
    return `/tasks/${encodeURIComponent(id)}`;
  }

  // -- formats ---------------------------------------------------------------------------

  const pad = (n) => String(n).padStart(2, "0");

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "";
    if (seconds < 1) return `${Math.round(seconds * 1000)}ms`;
    if (seconds < 60) return `${seconds.toFixed(1)}s`;
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) return `${minutes}m ${pad(Math.floor(seconds % 60))}s`;
    return `${Math.floor(minutes / 60)}h ${pad(minutes % 60)}m`;
  }

  function time(seconds) {
    if (!seconds) return "";
    const d = new Date(seconds * 1000);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
      `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  function ago(seconds) {
    const past = Date.now() / 1000 - seconds;
    if (past < 60) return "just now";
    if (past < 3600) return `${Math.floor(past / 60)}m ago`;
    if (past < 86400) return `${Math.floor(past / 3600)}h ago`;
    return `${Math.floor(past / 86400)}d ago`;
  }

  function bytes(count) {
    if (count === null || count === undefined) return "";
    const units = ["B", "KiB", "MiB", "GiB"];
    let value = count;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return unit ? `${value.toFixed(1)} ${units[unit]}` : `${count} B`;
  }

  const oneLine = (text) => String(text ?? "").replace(/\s+/g, " ").trim();

  // The running time of a task that has not ended yet, from the browser's clock.
  const elapsed = (task) => task.duration ?? Math.max(0, Date.now() / 1000 - task.started);

  function statusBadge(status) {
    const badge = node("span", "status", status);
    badge.dataset.status = STATUSES.includes(status) ? status : "other";
    return badge;
  }

  function exitText(task) {
    if (task.signal) return `signal ${task.signal}`;
    return task.returncode === null || task.returncode === undefined ? "" : String(task.returncode);
  }

  // -- notices and confirmation -------------------------------------------------------------

  function notify(text, kind = "ok", link = null) {
    const note = node("div", `notice ${kind}`, text);
    if (link) {
      const anchor = node("a", null, link.text);
      anchor.href = link.href;
      note.append(" ", anchor);
    }
    $("#notices").append(note);
    setTimeout(() => note.remove(), kind === "error" ? 10000 : 6000);
    return note;
  }

  function confirm(question) {
    const dialog = $("#confirm");
    $("#confirm-text").textContent = question;
    dialog.returnValue = "";
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
      dialog.showModal();
    });
  }

  // -- the API --------------------------------------------------------------------------------

  // data, when given, is sent as a JSON body (PATCH).
  async function call(method, url, data) {
    let response;
    const headers = { Accept: "application/json" };
    if (data !== undefined) headers["Content-Type"] = "application/json";
    try {
      response = await fetch(url, {
        method,
        credentials: "same-origin",
        headers,
        body: data === undefined ? undefined : JSON.stringify(data),
      });
    } catch (error) {
      notify(`the dashboard did not answer (${error.message})`, "error");
      return null;
    }
    let body = {};
    try {
      body = await response.json();
    } catch (error) {
      body = {};
    }
    if (!response.ok) {
      notify(body.error || `${response.status} ${response.statusText}`, "error");
      return null;
    }
    return body;
  }

  // Rerun, cancel or delete a task (asking first for delete); tells what happened.
  async function act(action, task) {
    const url = `/api/tasks/${encodeURIComponent(task.id)}`;
    if (action === "delete") {
      const what = `Delete task ${task.short_id} (${oneLine(task.command).slice(0, 80)})?`;
      if (!(await confirm(what))) return null;
      const body = await call("DELETE", url);
      if (body) notify(body.message);
      return body;
    }
    const body = await call("POST", `${url}/${action}`);
    if (body) {
      const fresh = action === "rerun" && body.task;
      notify(body.message, "ok", fresh ? { href: taskUrl(fresh.id), text: "open" } : null);
    }
    return body;
  }

  // -- live updates ---------------------------------------------------------------------

  // A task that ended and notifies (the hub's "notify" message, sent to every open
  // page): a browser notification, one per task whatever the number of tabs (its tag).
  function desktopNotify(message) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    const shown = new Notification(message.title, {
      body: message.body, tag: `qme-${message.id}`, icon: "/static/favicon.svg",
    });
    shown.addEventListener("click", () => {
      window.focus();
      location.href = taskUrl(message.id);
    });
  }

  // Ask for the permission once, on the first click (browsers want a user's gesture).
  if ("Notification" in window && Notification.permission === "default") {
    document.addEventListener("click", () => Notification.requestPermission(), { once: true });
  }

  // Keep a websocket open (reconnecting with back-off); onOpen(ws, again) runs on every
  // (re)connection, onMessage(message) for every message.
  function connect(onMessage, onOpen) {
    const badge = $("#live");
    let delay = 500;
    let opened = false;
    const show = (state, text) => {
      badge.dataset.state = state;
      badge.textContent = text;
    };
    function open() {
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      const ws = new WebSocket(`${scheme}://${location.host}/ws`);
      ws.addEventListener("open", () => {
        delay = 500;
        show("live", "live");
        if (onOpen) onOpen(ws, opened);
        opened = true;
      });
      ws.addEventListener("message", (event) => {
        let message;
        try {
          message = JSON.parse(event.data);
        } catch (error) {
          return;
        }
        if (message.type === "notify") {
          desktopNotify(message);
          return;
        }
        onMessage(message);
      });
      ws.addEventListener("close", () => {
        show("offline", "offline, reconnecting");
        setTimeout(open, delay);
        delay = Math.min(delay * 2, 10000);
      });
    }
    open();
  }

  return {
    $, node, taskUrl, active, duration, time, ago, bytes, oneLine, elapsed, statusBadge, exitText,
    notify, confirm, call, act, connect,
  };
})();
