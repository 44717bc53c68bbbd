%# `podman` tasks: the container page (container.tpl).
% include('container.tpl')
