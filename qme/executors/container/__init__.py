"""Container executors: `docker run`, `podman run` (oci.py) and `apptainer` or
`singularity` `exec`/`run` (apptainer.py). Each module imports only what it uses."""
