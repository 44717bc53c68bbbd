% rebase('layout.tpl', title=title, store=store, version=version, scripts=['table.js'])
% filters = page['filters']
<form class="filters" method="get" action="/">
  <input type="search" name="q" value="{{filters['q'] or ''}}"
         placeholder="Search commands, messages and output" aria-label="Search">
  <select name="executor" aria-label="Executor">
    <option value="">every executor</option>
    % for name in executors:
    <option value="{{name}}" {{'selected' if filters['executor'] == name else ''}}>{{name}}</option>
    % end
  </select>
  <select name="status" aria-label="Status">
    <option value="">every status</option>
    % for name in statuses:
    <option value="{{name}}" {{'selected' if filters['status'] == name else ''}}>{{name}}</option>
    % end
  </select>
  % if filters['session']:
  <input type="hidden" name="session" value="{{filters['session']}}">
  <a class="session-filter" href="/sessions/{{filters['session']}}">session {{filters['session'][:8]}}</a>
  % end
  <button type="submit">Show</button>
  % if any(filters.values()):
  <a class="reset" href="/">clear</a>
  % end
</form>
<div class="pager">
  <span class="count"></span>
  <span id="new-tasks" class="new-tasks" hidden><a href="/">new tasks: show the newest</a></span>
  <span class="pages">
    % if links['previous']:
    <a href="/">newest</a> <a href="{{links['previous']}}" rel="prev">‹ newer</a>
    % end
    % if links['next']:
    <a href="{{links['next']}}" rel="next">older ›</a>
    % end
  </span>
</div>
<table id="tasks" class="tasks" data-page="{{page_json}}">
  <thead>
    <tr>
      <th>Status</th><th>Exit</th><th>Executor</th><th class="wide">Command</th>
      <th>Directory</th><th>Host</th><th>Started</th><th>Duration</th>
      <th><span class="hidden-label">Actions</span></th>
    </tr>
  </thead>
  <tbody></tbody>
</table>
<p id="empty" class="empty" hidden>
  % if any(filters.values()):
  No task matches.
  % else:
  No tasks yet. Run one with <code>qme run COMMAND</code>: it shows up here at once.
  % end
</p>
