<div class="find">
  <input id="find" type="search" placeholder="Highlight in output and error (Enter: next)"
         aria-label="Highlight in output and error">
  <span id="find-count" class="find-count"></span>
</div>
<div class="streams">
  <section class="stream">
    <h2>Output <span class="size" data-size="output"></span></h2>
    <pre id="output" class="term" tabindex="0"></pre>
  </section>
  <section class="stream">
    <h2>Error <span class="size" data-size="error"></span></h2>
    <pre id="error" class="term" tabindex="0"></pre>
  </section>
</div>
