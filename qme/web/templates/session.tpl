%# One shell session (qme on): its commands in order, each with its output folded.
% rebase('layout.tpl', title=title, store=store, version=version, scripts=['ansi.js', 'session.js'])
<article id="session" class="session" data-tasks="{{tasks_json}}">
  <div class="headline">
    <h1 class="session-title">Session <code>{{session[:8]}}</code></h1>
    <span class="session-facts">{{len(tasks)}} commands · {{tasks[0].user}}@{{tasks[0].host}}</span>
    <a href="/?session={{session}}">as a table</a>
  </div>
  <div class="session-actions">
    <button type="button" id="unfold">Unfold all</button>
    <button type="button" id="fold">Fold all</button>
  </div>
  <ol id="cells" class="cells"></ol>
</article>
