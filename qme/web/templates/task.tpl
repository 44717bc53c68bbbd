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
  % if task.message:
  <p class="message">{{task.message}}</p>
  % end
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
