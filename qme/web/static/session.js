// A session's page: its commands in order, each with its output folded (like a notebook);
// a cell's output is fetched when it is unfolded. Task data only ever goes in as text.
"use strict";

(() => {
  const { $, node } = qme;
  const article = $("#session");
  const tasks = JSON.parse(article.dataset.tasks);
  const list = $("#cells");

  async function load(cell, task) {
    if (cell.dataset.loaded) return;
    cell.dataset.loaded = "1";
    const pre = cell.querySelector("pre");
    const response = await fetch(`/api/tasks/${encodeURIComponent(task.id)}/output`,
      { credentials: "same-origin" });
    if (!response.ok) return;
    new AnsiView(pre).append(new TextDecoder("utf-8").decode(await response.arrayBuffer()));
  }

  function cell(task, index) {
    const li = node("li", "cell");
    li.dataset.id = task.id;
    const details = node("details");
    const summary = node("summary");
    summary.append(
      node("span", "number", `[${index + 1}]`),
      qme.statusBadge(task.status),
      node("code", "command", qme.oneLine(task.command)),
      node("span", "facts", [qme.exitText(task) && `exit ${qme.exitText(task)}`,
        qme.duration(qme.elapsed(task)), task.cwd].filter(Boolean).join(" · ")),
    );
    const link = node("a", "open", "open");
    link.href = qme.taskUrl(task.id);
    summary.append(link);
    const pre = node("pre", "term");
    details.append(summary, pre);
    details.addEventListener("toggle", () => {
      if (details.open) load(li, task);
    });
    li.append(details);
    if (task.message) li.append(node("p", "message", task.message));
    return li;
  }

  list.replaceChildren(...tasks.map(cell));
  const toggleAll = (open) => list.querySelectorAll("details").forEach((d) => { d.open = open; });
  $("#unfold").addEventListener("click", () => toggleAll(true));
  $("#fold").addEventListener("click", () => toggleAll(false));
  qme.connect((message) => {
    if (message.type !== "tasks") return;
    for (const task of message.tasks) {
      const shown = list.querySelector(`li[data-id="${CSS.escape(task.id)}"]`);
      if (shown) {
        const at = [...list.children].indexOf(shown);
        shown.replaceWith(cell(task, at));
      } else if (task.session === tasks[0].session) {
        list.append(cell(task, list.children.length));
      }
    }
  });
})();
