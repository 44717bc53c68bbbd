%# The statistics page: charts drawn on the server as SVG (qme/web/charts.py).
% rebase('layout.tpl', title=title, store=store, version=version, scripts=[])
<article class="stats">
  <div class="headline">
    <h1>Statistics</h1>
    <p class="summary">{{'{:,}'.format(stats.tasks)}} tasks, {{'{:,}'.format(stats.failed)}} failed,
      in the last {{days}} days{{' on ' + host if host else ''}}</p>
  </div>
  <nav class="filters">
    % for d in (7, 30, 90, 365):
    <a href="/stats?{{urlencode({'days': d, **({'host': host} if host else {})})}}" class="{{'current' if d == days else ''}}">{{d}} days</a>
    % end
    <span class="sep">·</span>
    <a href="/stats?days={{days}}" class="{{'' if host else 'current'}}">every host</a>
    % for name, runs, url in host_links:
    <a href="{{url}}" class="host {{'current' if name == host else ''}}">{{name or '(none)'}} <small>{{'{:,}'.format(runs)}}</small></a>
    % end
  </nav>
  <div class="charts">
    <section><h2>Tasks per day <small>(failed in red)</small></h2>{{!per_day}}</section>
    <section><h2>Failure rate per day</h2>{{!failure_rate}}</section>
    <section><h2>Most-run commands</h2>{{!most_run}}</section>
    <section><h2>Slowest commands <small>(mean of finished runs)</small></h2>{{!slowest}}</section>
  </div>
</article>
