"""The pipeline core: stage graph, scheduler, results. No engine imports."""
