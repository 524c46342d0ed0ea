"""What the `dsl` command and the Python API offer on top of the pipeline: summary, graph,
diff, explain (provenance), export and eject, progress display."""
