%# The frame of every task page; executor_NAME.tpl fills in the main column.
% rebase('layout.tpl', title=title, store=store, version=version, scripts=['ansi.js', 'task.js'])
<article id="task" class="task" data-task="{{task_json}}">
  <div class="headline">
    <span class="status" data-status="{{task.status}}">{{task.status}}</span>
    <h1 class="command"><code>{{task.command}}</code></h1>
    <div class="actions">
      <button type="button" data-action="rerun" title="run the command again, as a new task">Rerun</button>
      <button type="button" data-action="cancel" title="stop it (SIGTERM, or the executor's own cancel)">Cancel</button>
      <button type="button" data-action="delete" class="danger">Delete</button>
      % for name, description in executor_actions.items():
      % if name != "cancel":  # the Cancel button runs it
      <button type="button" data-executor-action="{{name}}" title="{{description}}">{{name}}</button>
      % end
      % end
    </div>
  </div>
  <p class="message"{{'' if task.message else ' hidden'}}>{{task.message or ''}}</p>
  <div class="annotations">
    <ul id="tags" class="tags" aria-label="tags"></ul>
    <form id="tag-form" class="tag-form">
      <input id="tag-input" name="tag" placeholder="add a tag" maxlength="64" size="12"
        autocomplete="off" aria-label="add a tag">
    </form>
    <details id="note-editor" class="note-editor">
      <summary>{{'Edit the note' if task.message else 'Add a note'}}</summary>
      <form id="note-form">
        <textarea id="note-text" rows="3" aria-label="note">{{task.message or ''}}</textarea>
        <button type="submit">Save note</button>
      </form>
    </details>
  </div>
  <div class="columns">
    <aside class="meta"><dl id="meta"></dl></aside>
    <div class="main">
      {{!base}}
      <section id="action-result" class="action-result" hidden>
        <h2></h2>
        <pre></pre>
      </section>
    </div>
  </div>
</article>
