"""Programs that run agent code in a child process: the environment test child and the local trainer."""
