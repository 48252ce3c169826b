"""THE one launcher for agent-written code: environment tests, local training, evaluation jobs.

Everything the agent writes (environment.py, scorers, anything they import) runs only through
`launch`. The policy lives here, in one place:

    from flash_mcp.sandbox import Limits, SandboxSpec, launch, kill_tree, python_argv, sandbox_settings

    policy = sandbox_settings(home)                      # [sandbox] in FLASH_MCP_HOME/settings.toml
    process = launch(SandboxSpec(
        argv=python_argv("flash_mcp.jobs.evaluator", str(run_dir)),
        read_only=[package_dir, model_dir],              # the project / pushed package, model files
        read_write=[run_dir],                            # its own scratch or run directory, nothing else
        env={"HF_HUB_OFFLINE": "1"},                     # added to the clean allow-listed base env
        secrets={"WANDB_API_KEY": "…"},                  # declared run secrets, by name, this run only
        limits=policy.training_limits,                   # or .limits (env tests): memory, processes, CPU s
        network=False,                                   # no network namespace interfaces at all
        pass_fds=(results_w,),                           # the only descriptors the child gets
        detached=False,                                  # True: survives a server restart (training)
        cwd=run_dir,
        stdout=log_file,                                 # never the server's stdout; default DEVNULL
        allow_unsandboxed=policy.allow_unsandboxed,
        state_dir=policy.state_dir,                      # refused if any granted path exposes it
    ))
    ...
    kill_tree(process)                                   # the whole tree, synchronously
    worker = launch_worker(home, package_dir, limits="training")  # the environment worker, joined by two pipes
    sandbox_status()                                     # what is active here (for whoami)

`launch` returns a `subprocess.Popen` for a small supervisor process; the agent's program runs as
PID 1's only child inside fresh user, PID, mount, IPC and (by default) network namespaces, with a
fresh /proc, Landlock allowing only the listed paths (plus the Python installation, read-only),
`.env*` files in the read-only trees masked, no capabilities, no_new_privs, rlimits (address space,
CPU seconds, processes), a seccomp filter (no unix sockets, no io_uring, no keyrings) and, where writable, a
pids cgroup. Killing the supervisor (or the server
exiting, for `detached=False`) kills every process in the namespace. Where no sandbox can be set
up, `launch` raises `SandboxUnavailable` (a UserError naming `[sandbox] allow_unsandboxed = true`)
unless `allow_unsandboxed` is set, in which case the program runs with the clean environment and
the rlimits only. Only home/runs/<id>-style paths (two levels down) of the state dir may be granted.

Threads: `detached=False` ties the tree to this *server process* (a lifeline pipe), not to the
calling thread. Secrets in `secrets` reach only this program's environment; never put them in argv.

`launch_job` (the trainer, the evaluator) forks the job from a preloaded fork server (forkserver.py) where it can,
so a job does not spend its first seconds importing torch; the sandbox it gets is the one above, set up by the same
`init.run`. Environment-test children (`SandboxSpec.preload`) fork from a second, light fork server that has
imported only the SDK and the harness (forked.py). `warm_up_jobs()` and `warm_up_env_tests()` start them early;
`[sandbox] preload_jobs = false` turns both off.

The supervisor forwards SIGTERM to the program and kills the namespace after a grace period, so
SIGTERM to the supervisor is a graceful cancel and `kill_tree` a hard one. A detached job's handle is the
`Spawned` record `launch_job` returns (pid and start time, so a reused pid is never signalled: `signal_job`).
"""

from __future__ import annotations

from flash_mcp.sandbox.api import (
    GRACE_SECONDS,
    Limits,
    SandboxSettings,
    SandboxSpec,
    SandboxUnavailable,
    base_env,
    gpu_device_nodes,
    kill_tree,
    model_tree,
    python_argv,
    sandbox_settings,
    sandbox_status,
)
from flash_mcp.sandbox.detect import confined_reason
from flash_mcp.sandbox.forked import launch, warm_up_env_tests
from flash_mcp.sandbox.job_launch import launch_job, warm_up_jobs
from flash_mcp.sandbox.process import Spawned, running, signal_job, spawned
from flash_mcp.sandbox.workers import Worker, WorkerLimits, launch_worker, remove_scratch

__all__ = [
    "GRACE_SECONDS",
    "Limits",
    "SandboxSettings",
    "SandboxSpec",
    "SandboxUnavailable",
    "Spawned",
    "Worker",
    "WorkerLimits",
    "base_env",
    "confined_reason",
    "gpu_device_nodes",
    "kill_tree",
    "launch",
    "launch_job",
    "launch_worker",
    "model_tree",
    "python_argv",
    "remove_scratch",
    "running",
    "sandbox_settings",
    "sandbox_status",
    "signal_job",
    "spawned",
    "warm_up_env_tests",
    "warm_up_jobs",
]
