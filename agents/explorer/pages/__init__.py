"""Read models of the explorer's pages, each built from index rows only (`agents.explorer.rows`)."""
