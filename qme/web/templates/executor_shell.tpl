%# A shell task: the command up front, metadata at the side, output and error side by side.
% rebase('task.tpl', title=title, store=store, version=version, task=task, task_json=task_json, executor_actions=executor_actions)
% include('streams.tpl')
