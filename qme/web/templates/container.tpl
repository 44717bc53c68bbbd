%# A container run (docker, podman, apptainer): the image and container (task.data,
%# kept up to date by the executor and pushed live), then what the command printed.
% rebase('task.tpl', title=title, store=store, version=version, task=task, task_json=task_json, executor_actions=executor_actions)
% data = task.data
<section class="job container">
  <h2>{{data.get("engine", task.executor)}} container{{" " + data["container"][:12] if data.get("container") else ""}}</h2>
  <p>image <code>{{data.get("image") or "?"}}</code>{{" (detached)" if data.get("detach") else ""}}</p>
  <dl id="data" class="facts"></dl>
  % if "logs" in executor_actions:
  <p class="hint">The buttons above run the executor's actions: <em>logs</em> and
    <em>status</em> ask the engine, <em>stop</em> and <em>rm</em> act on the container.</p>
  % end
</section>
% include('streams.tpl')
