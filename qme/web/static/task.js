// One task's page: metadata, output and error (growing live while it runs), find, actions.
"use strict";

(() => {
  const { $, node } = qme;
  const article = $("#task");
  let task = JSON.parse(article.dataset.task);
  const base = `/api/tasks/${encodeURIComponent(task.id)}`;
  const streams = ["output", "error"];
  const views = {};
  const decoders = {};
  const offsets = {}; // bytes of each stream shown so far
  for (const stream of streams) {
    const pre = $(`#${stream}`);
    if (pre) views[stream] = new AnsiView(pre);
    decoders[stream] = new TextDecoder("utf-8");
    offsets[stream] = 0;
  }

  // -- metadata -----------------------------------------------------------------------

  function facts(list, pairs) {
    list.replaceChildren();
    for (const [label, value, href] of pairs) {
      if (value === null || value === undefined || value === "") continue;
      const dd = node("dd");
      if (value instanceof Node) dd.append(value);
      else if (href) {
        const a = node("a", null, value);
        a.href = href;
        dd.append(a);
      } else dd.textContent = String(value);
      list.append(node("dt", null, label), dd);
    }
  }

  // Executor data as label/value pairs: {job: {state: "RUNNING"}} -> ["job state", "RUNNING"].
  function flatten(data, prefix = "") {
    return Object.entries(data).flatMap(([key, value]) => {
      const label = prefix ? `${prefix} ${key}` : key;
      if (value && typeof value === "object" && !Array.isArray(value) && !prefix) {
        return flatten(value, label);
      }
      return [[label, typeof value === "object" ? JSON.stringify(value) : value]];
    });
  }

  function renderTask() {
    const cpu = task.cpu_user === null ? null
      : `${(task.cpu_user + task.cpu_system).toFixed(2)}s (user ${task.cpu_user.toFixed(2)}s)`;
    facts($("#meta"), [
      ["Exit code", task.returncode],
      ["Signal", task.signal],
      ["Started", `${qme.time(task.started)} (${qme.ago(task.started)})`],
      ["Ended", qme.time(task.ended)],
      ["Duration", qme.duration(qme.elapsed(task)) + (qme.active(task) ? " so far" : "")],
      ["Directory", task.cwd],
      ["User", task.user],
      ["Host", task.host],
      ["PID", task.pid],
      ["Executor", task.executor],
      ["Peak memory", task.max_rss ? qme.bytes(task.max_rss) : null],
      ["CPU time", cpu],
      ["Terminal", task.term_cols ? `${task.term_cols}×${task.term_rows}` : null],
      ["Rerun of", task.rerun_of, task.rerun_of && qme.taskUrl(task.rerun_of)],
      ["Id", task.id],
    ]);
    const data = $("#data");
    const { accounting, ...rest } = task.data || {};
    if (data) facts(data, flatten($("#accounting") ? rest : task.data || {}));
    if ($("#accounting")) renderAccounting(accounting);
    const badge = $(".headline .status");
    badge.replaceWith(qme.statusBadge(task.status));
    article.dataset.status = task.status;
    $('button[data-action="cancel"]').hidden = !qme.active(task);
    $('button[data-action="delete"]').hidden = qme.active(task);
    for (const stream of streams) {
      const label = $(`[data-size="${stream}"]`);
      if (label) label.textContent = offsets[stream] ? qme.bytes(offsets[stream]) : "";
    }
  }

  // A Slurm job's archived accounting (data.accounting): one list, or a table for an array.
  const percent = (value) => (value === null || value === undefined ? null : `${value}%`);
  const ofLimit = (r) => (r.timelimit ? `${r.elapsed} of ${r.timelimit}` : r.elapsed);

  function accountingPairs(r) {
    return [
      ["State", `${r.state} (exit code ${r.exitcode})`],
      ["Elapsed", ofLimit(r)],
      ["CPUs", r.alloccpus],
      ["Memory", r.allocmem_bytes ? qme.bytes(r.allocmem_bytes) : r.reqmem],
      ["CPU time", r.totalcpu],
      ["CPU efficiency", percent(r.cpu_efficiency)],
      ["MaxRSS", r.maxrss_bytes === null ? null : qme.bytes(r.maxrss_bytes)],
      ["Memory efficiency", percent(r.memory_efficiency)],
      ["Nodes", r.nodelist],
      ["Partition", r.partition],
      ["QOS", r.qos],
      ["Submitted", r.submit],
      ["Started", r.start],
      ["Ended", r.end],
    ];
  }

  function renderAccounting(record) {
    const section = $("#accounting");
    const box = section.querySelector(".facts");
    section.hidden = !record;
    if (!record) return;
    box.replaceChildren();
    if (record.unavailable) {
      box.append(node("p", "hint", record.unavailable));
    } else if (record.elements) {
      const columns = ["element", "state", "exit", "elapsed", "CPU eff.", "mem. eff.", "MaxRSS"];
      const table = node("table", "elements");
      const head = table.createTHead().insertRow();
      columns.forEach((name) => head.append(node("th", null, name)));
      const body = table.createTBody();
      for (const [index, r] of Object.entries(record.elements)) {
        const tr = body.insertRow();
        [index, r.state, r.exitcode, ofLimit(r), percent(r.cpu_efficiency),
          percent(r.memory_efficiency), r.maxrss_bytes === null ? "" : qme.bytes(r.maxrss_bytes),
        ].forEach((value) => tr.append(node("td", null, value)));
      }
      box.append(table);
    } else {
      const list = node("dl");
      facts(list, accountingPairs(record));
      box.append(list);
    }
  }

  // -- output -------------------------------------------------------------------------

  function append(stream, bytes, at) {
    if (at > offsets[stream]) return false; // a gap: fetch the rest instead
    const fresh = bytes.subarray(offsets[stream] - at);
    if (!fresh.length) return true;
    offsets[stream] += fresh.length;
    if (views[stream]) views[stream].append(decoders[stream].decode(fresh, { stream: true }));
    refind();
    return true;
  }

  async function fetchStream(stream) {
    const response = await fetch(`${base}/${stream}?offset=${offsets[stream]}`,
      { credentials: "same-origin" });
    if (!response.ok) return;
    const at = Number(response.headers.get("X-Qme-Offset") || 0);
    append(stream, new Uint8Array(await response.arrayBuffer()), at);
  }

  function fromBase64(text) {
    const raw = atob(text);
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i += 1) bytes[i] = raw.charCodeAt(i);
    return bytes;
  }

  // -- find ---------------------------------------------------------------------------

  const find = $("#find");
  let current = -1;

  function refind() {
    if (!find || !find.value) return;
    const count = Object.values(views).reduce((n, view) => n + view.highlight(find.value), 0);
    $("#find-count").textContent = count === 1 ? "1 match" : `${count} matches`;
  }

  if (find) {
    find.addEventListener("input", () => {
      current = -1;
      if (find.value) refind();
      else {
        Object.values(views).forEach((view) => view.highlight(""));
        $("#find-count").textContent = "";
      }
    });
    find.addEventListener("keydown", (event) => {
      if (event.key !== "Enter") return;
      event.preventDefault();
      const marks = Object.values(views).flatMap((view) => view.marks());
      if (!marks.length) return;
      marks.forEach((mark) => mark.classList.remove("current"));
      current = (current + (event.shiftKey ? -1 : 1) + marks.length) % marks.length;
      marks[current].classList.add("current");
      marks[current].scrollIntoView({ block: "center" });
    });
  }

  // -- actions ------------------------------------------------------------------------

  article.addEventListener("click", async (event) => {
    const target = event.target.closest("button[data-action], button[data-executor-action]");
    if (!target) return;
    target.disabled = true;
    try {
      if (target.dataset.action) {
        const done = await qme.act(target.dataset.action, task);
        if (done && done.deleted) location.assign("/");
      } else {
        const name = target.dataset.executorAction;
        const done = await qme.call("POST", `${base}/actions/${encodeURIComponent(name)}`);
        if (done) showResult(name, done.result);
      }
    } finally {
      target.disabled = false;
    }
  });

  function showResult(name, result) {
    const box = $("#action-result");
    box.hidden = false;
    box.querySelector("h2").textContent = name;
    const text = Array.isArray(result) && result.every((r) => typeof r === "string")
      ? result.join("") : typeof result === "string" ? result : JSON.stringify(result, null, 2);
    box.querySelector("pre").textContent = text;
  }

  // -- note and tags, edited in place (PATCH /api/tasks/ID) ---------------------------

  const noteText = $("#note-text");

  function renderAnnotations() {
    const message = $(".headline ~ .message");
    message.textContent = task.message || "";
    message.hidden = !task.message;
    $("#note-editor summary").textContent = task.message ? "Edit the note" : "Add a note";
    if (document.activeElement !== noteText) noteText.value = task.message || "";
    $("#tags").replaceChildren(...(task.tags || []).map((tag) => {
      const chip = node("li", "tag");
      chip.append(node("span", "name", tag));
      const remove = node("button", "remove", "×");
      remove.type = "button";
      remove.title = `remove the tag ${tag}`;
      remove.setAttribute("aria-label", `remove the tag ${tag}`);
      remove.addEventListener("click", () => annotate({ tags: task.tags.filter((t) => t !== tag) }));
      chip.append(remove);
      return chip;
    }));
  }

  async function annotate(change) {
    const fresh = await qme.call("PATCH", base, change);
    if (!fresh) return false;
    task = { ...task, ...fresh };
    renderAnnotations();
    return true;
  }

  $("#tag-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("#tag-input");
    const added = input.value.trim().split(/[\s,]+/).filter(Boolean);
    if (!added.length) return;
    if (await annotate({ tags: [...(task.tags || []), ...added] })) input.value = "";
  });

  $("#note-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (await annotate({ note: noteText.value })) {
      noteText.blur();
      renderAnnotations();
      $("#note-editor").open = false;
      qme.notify("note saved");
    }
  });

  // -- live -----------------------------------------------------------------------------

  function deleted() {
    article.classList.add("gone");
    qme.notify(`task ${task.short_id} was deleted`, "error");
    article.querySelectorAll("button").forEach((b) => { b.disabled = true; });
  }

  // A running task's duration every second; the age of any ("3m ago") every 15 s.
  let ticks = 0;
  setInterval(() => {
    ticks += 1;
    if (qme.active(task) || ticks % 15 === 0) renderTask();
  }, 1000);

  renderTask();
  renderAnnotations();
  Promise.all(streams.map(fetchStream)).then(() => {
    renderTask();
    qme.connect((message) => {
      if (message.type === "tasks") {
        const mine = message.tasks.find((t) => t.id === task.id);
        if (mine) {
          task = { ...task, ...mine };
          renderTask();
          renderAnnotations();
        }
      } else if (message.type === "output" && message.id === task.id) {
        if (!append(message.stream, fromBase64(message.data), message.offset)) {
          fetchStream(message.stream);
        }
        renderTask();
      } else if (message.type === "deleted" && message.ids.includes(task.id)) {
        deleted();
      }
    }, (ws) => ws.send(JSON.stringify({ follow: task.id, offsets })));
  });
})();
