%# A Slurm task: the job (id, state, files; task.data, kept up to date by the
%# executor and pushed live), then what sbatch printed.
% rebase('task.tpl', title=title, store=store, version=version, task=task, task_json=task_json, executor_actions=executor_actions)
<section class="job">
  <h2>Slurm job {{task.data.get("jobid", "")}}</h2>
  <dl id="data" class="facts"></dl>
  <p class="hint">The buttons above run the executor's actions: <em>status</em> asks
    Slurm, <em>output</em> and <em>error</em> show the job's files.</p>
</section>
%# Filled in by task.js from task.data.accounting, archived from sacct when the job ended.
<section id="accounting" class="accounting" hidden>
  <h2>Accounting</h2>
  <div class="facts"></div>
  <p class="hint">Kept in the task when the job ended, so it outlives sacct's purge.
    Efficiencies as <code>seff</code> computes them.</p>
</section>
% include('streams.tpl')
