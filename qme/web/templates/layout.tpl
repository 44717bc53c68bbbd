%# Every page. `base` is the page's own markup, already rendered (and escaped)
%# by its template; everything else here is escaped by {{…}}.
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{title}} · qme</title>
<link rel="icon" href="/static/favicon.svg?v={{version}}" type="image/svg+xml">
<link rel="stylesheet" href="/static/qme.css?v={{version}}">
<script src="/static/qme.js?v={{version}}" defer></script>
% for script in scripts:
<script src="/static/{{script}}?v={{version}}" defer></script>
% end
</head>
<body>
<header class="topbar">
  <a class="brand" href="/">qme</a>
  <span class="store" title="the store this dashboard shows">{{store}}</span>
  <span id="live" class="live" data-state="connecting" title="live updates">connecting</span>
  <nav>
    <a href="/">Tasks</a>
    <a href="/stats">Statistics</a>
    <a href="/api/tasks">API</a>
    <a href="/api/openapi.json">OpenAPI</a>
  </nav>
</header>
<main>
{{!base}}
</main>
<div id="notices" class="notices" role="status" aria-live="polite"></div>
<dialog id="confirm" class="confirm">
  <form method="dialog">
    <p id="confirm-text"></p>
    <div class="buttons">
      <button value="cancel" autofocus>Keep it</button>
      <button value="ok" class="danger">Delete</button>
    </div>
  </form>
</dialog>
</body>
</html>
