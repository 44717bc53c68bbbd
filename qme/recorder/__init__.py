"""Running a command exactly as typed while recording it (see DESIGN.md, "Recorder").

spawn.py starts the command, pump.py passes its stdio through, recording.py ties
them to a writer: handoff.py's writer child, or store/writer.py's thread. This
file imports nothing, so that `qme run` can start the command (spawn.py) before
it imports the rest.
"""
