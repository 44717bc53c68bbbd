// The task table: rows from the page's data, kept live by the websocket.
"use strict";

(() => {
  const { $, node } = qme;
  const table = $("#tasks");
  const body = table.tBodies[0];
  let page = JSON.parse(table.dataset.page);
  const tasks = new Map(); // id -> task shown in the table
  const filters = page.filters;
  // New tasks go in live only where they belong: the first page, no search.
  const takesNewTasks = () => page.offset === 0 && !filters.q;

  function cell(className, text, title) {
    const td = node("td", className, text);
    if (title) td.title = title;
    return td;
  }

  function button(action, label, title) {
    const b = node("button", `small ${action === "delete" ? "danger" : ""}`, label);
    b.type = "button";
    b.dataset.action = action;
    b.title = title;
    return b;
  }

  // The match of a search: the matched words come between \x02 and \x03.
  function matchLine(match) {
    const line = node("div", "match");
    line.append(node("span", "field", `${match.field}: `));
    match.line.split(/(\x02[^\x03]*\x03)/).forEach((part) => {
      if (part.startsWith("\x02")) line.append(node("mark", null, part.slice(1, -1)));
      else if (part) line.append(part);
    });
    return line;
  }

  function row(task) {
    const tr = node("tr");
    tr.dataset.id = task.id;
    tr.dataset.status = task.status;
    const status = node("td");
    status.append(qme.statusBadge(task.status));
    // Why a pending task waits, when its executor says (a Slurm job's reason).
    const reason = task.status === "pending" && task.data && task.data.reason;
    if (reason) status.append(node("div", "reason", reason));
    const command = node("td", "command wide");
    const link = node("a", null, qme.oneLine(task.command));
    link.href = qme.taskUrl(task.id);
    link.title = task.command;
    command.append(link);
    if (task.message) command.append(node("div", "message", task.message));
    if (task.tags && task.tags.length) {
      command.append(node("div", "tags", null));
      command.lastChild.append(...task.tags.map((tag) => node("span", "tag", tag)));
    }
    if (task.session) {
      const session = node("a", "session", `session ${task.session.slice(0, 8)}`);
      session.href = `/sessions/${encodeURIComponent(task.session)}`;
      session.title = "the commands of this shell session, in order";
      command.append(session);
    }
    if (task.match) command.append(matchLine(task.match));
    const actions = node("td");
    const buttons = node("div", "row-actions");
    buttons.append(button("rerun", "Rerun", "run it again as a new task"));
    if (qme.active(task)) {
      buttons.append(button("cancel", "Cancel", "stop it (SIGTERM, or the executor's own cancel)"));
    } else {
      buttons.append(button("delete", "Delete", "delete this task"));
    }
    actions.append(buttons);
    tr.append(
      status,
      // "sig 15", not "signal 15": the column is narrow (the full word in its title).
      cell("exit", task.signal ? `sig ${task.signal}` : qme.exitText(task), qme.exitText(task)),
      cell("executor", task.executor),
      command,
      cell("cwd", task.cwd, task.cwd),
      cell("host", task.host),
      cell("started", qme.time(task.started), qme.ago(task.started)),
      cell("duration", qme.duration(qme.elapsed(task))),
      actions,
    );
    return tr;
  }

  // "1–50 of 1,234", "… of more than 10,000"; for a search "1–50 of 10,000+ matches".
  function showCount() {
    const shown = body.rows.length;
    const number = (n) => n.toLocaleString("en-US");
    let text = filters.q ? "no match" : "no tasks";
    if (shown) {
      text = `${number(page.offset + 1)}–${number(page.offset + shown)}`;
      const total = Math.max(page.total, page.offset + shown);
      if (filters.q) text += ` of ${number(total)}${page.total_exact ? "" : "+"} matches`;
      else text += ` of ${page.total_exact ? "" : "more than "}${number(total)}`;
    }
    $(".pager .count").textContent = text;
    $("#empty").hidden = shown > 0;
  }

  function render(list) {
    tasks.clear();
    body.replaceChildren(...list.map((task) => {
      tasks.set(task.id, task);
      return row(task);
    }));
    showCount();
  }

  const matches = (task) =>
    (!filters.executor || task.executor === filters.executor) &&
    (!filters.status || task.status === filters.status) &&
    (!filters.session || task.session === filters.session);

  function update(task) {
    const shown = tasks.get(task.id);
    const tr = body.querySelector(`tr[data-id="${CSS.escape(task.id)}"]`);
    if (shown && tr) {
      const fresh = { ...task, match: shown.match };
      tasks.set(task.id, fresh);
      tr.replaceWith(row(fresh));
      return;
    }
    if (!matches(task)) return;
    if (!takesNewTasks()) {
      $("#new-tasks").hidden = false;
      return;
    }
    // Newest first: before the first row that started earlier.
    const later = [...body.rows].find((r) => tasks.get(r.dataset.id).started < task.started);
    const tr2 = row(task);
    tr2.classList.add("arrived");
    tasks.set(task.id, task);
    body.insertBefore(tr2, later || null);
    while (body.rows.length > page.limit) {
      tasks.delete(body.rows[body.rows.length - 1].dataset.id);
      body.deleteRow(-1);
    }
    if (page.total !== null) page.total += 1;
    showCount();
  }

  function remove(id) {
    const tr = body.querySelector(`tr[data-id="${CSS.escape(id)}"]`);
    if (!tr) return;
    tr.remove();
    tasks.delete(id);
    if (page.total) page.total -= 1;
    showCount();
  }

  // Catch up after the connection was lost: fetch this page again.
  async function reload() {
    const fresh = await qme.call("GET", `/api/tasks${location.search}`);
    if (fresh) {
      page = fresh;
      render(page.tasks);
    }
  }

  body.addEventListener("click", async (event) => {
    const target = event.target.closest("button[data-action]");
    if (!target) return;
    const task = tasks.get(target.closest("tr").dataset.id);
    target.disabled = true;
    const done = await qme.act(target.dataset.action, task);
    target.disabled = false;
    if (!done) return;
    if (done.deleted) remove(done.deleted);
    if (done.task) update(done.task);
  });

  // Running tasks' durations tick along; ages ("3m ago", in the titles) too.
  setInterval(() => {
    for (const tr of body.rows) {
      const task = tasks.get(tr.dataset.id);
      if (!task) continue;
      if (qme.active(task)) {
        tr.querySelector(".duration").textContent = qme.duration(qme.elapsed(task));
      }
      tr.querySelector(".started").title = qme.ago(task.started);
    }
  }, 1000);

  render(page.tasks);
  qme.connect((message) => {
    if (message.type === "tasks") message.tasks.forEach(update);
    else if (message.type === "deleted") message.ids.forEach(remove);
  }, (ws, again) => {
    if (again) reload();
  });
})();
