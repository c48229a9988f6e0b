"""Local Cloud Workflows emulator server (wraps the `workflows-emulator` engine).

Run with the isolated venv, in the foreground:

    .local/venvs/workflows/bin/python emulators/workflows/serve.py \
        --host 127.0.0.1 --port 8095 path/to/workflows_dir

Why not `workflows-emulator serve`: upstream binds 0.0.0.0 (no --host), serves
one file given with --source for every workflow id, and binds the execution
`argument` differently from real Cloud Workflows. This script:

* serves every `<id>.yaml` / `<id>.yml` in the directory as workflow `<id>`;
  files are looked up and re-read on every request (add/edit without restart);
* POST /v1/projects/{p}/locations/{l}/workflows/{id}/executions
  body {"argument": "<JSON string>"} (as in the real API); the decoded argument
  is bound to main's single param, like real Cloud Workflows;
  200 -> the workflow's return value as JSON (NOT an Execution resource);
  500 -> {"error": <error map, as `except: as: e` would see it>};
  404 unknown workflow id; 400 argument is not valid JSON;
* GET /healthz -> 200 {"status": "ok", "workflows": [...]};
* sets GOOGLE_CLOUD_PROJECT_ID|NUMBER, _LOCATION, _WORKFLOW_ID,
  _WORKFLOW_REVISION_ID, _WORKFLOW_EXECUTION_ID from the URL per execution;
  executions are serialized (the engine keeps these in os.environ);
* small fidelity fixes to the engine (see `_patch_engine`), incl. http.* calls
  with `auth: {type: OIDC}` or `{type: OAuth2}` sent without a token (upstream
  fails the first and fetches real credentials for the second);
* a stand-in of the two Cloud Run Admin API calls a workflow makes to run a job
  (`--jobs-file`, JSON written by `emulators/stack.py`: per job its command, working
  directory, environment, tasks, max_retries, timeout_s):
  POST /v2/projects/{p}/locations/{l}/jobs/{job}:run {overrides: {taskCount,
  containerOverrides: [{env: [{name, value}]}]}} -> a long-running Operation
  {name, done: false}; the execution runs in the background: every task a process
  at once, with CLOUD_RUN_JOB, CLOUD_RUN_EXECUTION, CLOUD_RUN_TASK_INDEX,
  CLOUD_RUN_TASK_COUNT, CLOUD_RUN_TASK_ATTEMPT set as Cloud Run sets them; a task
  that exits non-zero (or outlives timeout_s) is retried alone, up to max_retries.
  GET /v2/projects/{p}/locations/{l}/operations/{id} -> {name, done, response:
  Execution {name, taskCount, succeededCount, failedCount, retriedCount}, error?}.
  Not emulated: containers and images (the tasks are local processes of the
  project's virtualenv), CPU and memory limits, `parallelism` (all tasks at once),
  IAM and tokens, cancellation, Cloud Logging; operations live in memory only.
"""

import argparse
import hashlib
import json
import logging
import os
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# Keep google-auth's metadata-server probe (only hit by auth: OAuth2 and
# googleapis.* connectors, which need real credentials) on loopback. google-auth
# reads these at import time, hence before the imports below.
os.environ.setdefault("GCE_METADATA_HOST", "127.0.0.1:9")
os.environ.setdefault("GCE_METADATA_IP", "127.0.0.1:9")

import requests
import uvicorn
import yaml
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from workflows_emulator import main as engine
from workflows_emulator import render
from workflows_emulator.lib import http_utils
from workflows_emulator.utils import WorkflowError

EXECUTIONS = "/v1/projects/{project}/locations/{location}/workflows/{workflow_id}/executions"
_ENV_KEYS = (
    "GOOGLE_CLOUD_PROJECT_ID",
    "GOOGLE_CLOUD_PROJECT_NUMBER",
    "GOOGLE_CLOUD_LOCATION",
    "GOOGLE_CLOUD_WORKFLOW_ID",
    "GOOGLE_CLOUD_WORKFLOW_REVISION_ID",
    "GOOGLE_CLOUD_WORKFLOW_EXECUTION_ID",
)
_LOCK = threading.Lock()


def _patch_engine() -> None:
    """Fidelity fixes for workflows-emulator 1.10.0 (all verified on it)."""
    # 1. `true`, `false`, `null` inside ${...} raise SyntaxError upstream.
    render.STANDARD_LIBRARY.update(true=True, false=False, null=None)

    # 2. A whole-string ${expr} that evaluates to a map (e.g. ${resp.body}) is an
    #    addict subclass, so upstream renders it via Python repr + YAML: null ->
    #    "None", "\n" -> literal backslash-n, an apostrophe -> yaml ParserError.
    #    A null result (${sys.get_env("UNSET")}) also became the string "None".
    original_render_str = render.render_str

    def render_str(value, context):
        if isinstance(value, str) and value.startswith("${") and value.find("}") == len(value) - 1:
            evaluated = render.run_code(value[2:-1], context)
            if isinstance(evaluated, (dict, list)):
                return json.loads(json.dumps(evaluated))
            if evaluated is None or isinstance(evaluated, (str, bool, int, float)):
                return evaluated
            return yaml.safe_load(str(evaluated))  # upstream behaviour otherwise
        return original_render_str(value, context)

    render.render_str = render_str

    # 3. HTTP failures as Cloud Workflows error maps: tag "HttpError" (upstream:
    #    "HTTPError"); connection refused / timeouts become catchable
    #    ConnectionFailedError / TimeoutError (upstream: uncatchable raw errors).
    original_request = http_utils.request

    def request(*args, **kwargs):
        # 5. `auth: {type: OIDC}` raises NotImplementedError upstream. Locally
        #    nothing checks tokens, so send the call unauthenticated instead.
        auth = kwargs.get("auth")
        if isinstance(auth, dict) and auth.get("type") in ("OIDC", "OAuth2"):
            logging.getLogger("workflows").info("auth OIDC ignored locally: %s", kwargs.get("url"))
            kwargs["auth"] = None
        try:
            return original_request(*args, **kwargs)
        except requests.HTTPError as err:
            resp = err.response
            body = resp.text
            if "application/json" in resp.headers.get("Content-Type", ""):
                body = resp.json()
            raise WorkflowError(
                message=err.args[0],
                tags=["HttpError"],
                code=resp.status_code,
                headers=dict(resp.headers),
                body=body,
            ) from err
        except requests.Timeout as err:
            raise WorkflowError(message=str(err), tags=["TimeoutError"]) from err
        except requests.ConnectionError as err:
            raise WorkflowError(message=str(err), tags=["ConnectionFailedError"]) from err

    http_utils.request = request

    # 4. StepAssign takes a process-wide Lock and never releases it when the
    #    assignment raises (e.g. ${m.missing_key}): every later `assign` in the
    #    process then hangs forever. Release it on the error path.
    original_assign = engine.StepAssign.execute

    def assign_execute(self):
        try:
            return original_assign(self)
        except BaseException:
            if engine.LOCK.locked():
                engine.LOCK.release()
            raise

    engine.StepAssign.execute = assign_execute


def _error_map(err: BaseException) -> dict:
    if isinstance(err, WorkflowError):
        payload = err.payload
        if hasattr(payload, "to_dict"):
            payload = payload.to_dict()
        if not isinstance(payload, dict):
            payload = {"message": str(payload)}
        return json.loads(json.dumps(payload, default=str))
    return {"message": str(err), "tags": [type(err).__name__]}


JOB_RUN = "/v2/projects/{project}/locations/{location}/jobs/{job}:run"
OPERATION = "/v2/projects/{project}/locations/{location}/operations/{operation}"
_OPERATIONS: dict = {}
_OPERATIONS_LOCK = threading.Lock()


def _api_error(code: int, status: str, message: str) -> JSONResponse:
    return JSONResponse(
        status_code=code, content={"error": {"code": code, "status": status, "message": message}}
    )


def _run_task(spec: dict, job: str, execution: str, env: dict, index: int, count: int) -> dict:
    """One task, retried alone until it succeeds or has used its retries."""
    log_dir = Path(spec.get("log_dir") or ".")
    log_dir.mkdir(parents=True, exist_ok=True)
    retries = int(spec.get("max_retries", 0))
    outcome = {"index": index, "attempts": 0, "succeeded": False, "exit_codes": []}
    for attempt in range(retries + 1):
        task_env = {
            **env,
            "CLOUD_RUN_JOB": job,
            "CLOUD_RUN_EXECUTION": execution,
            "CLOUD_RUN_TASK_INDEX": str(index),
            "CLOUD_RUN_TASK_COUNT": str(count),
            "CLOUD_RUN_TASK_ATTEMPT": str(attempt),
        }
        outcome["attempts"] = attempt + 1
        with (log_dir / f"job-{job}-task{index}.log").open("ab") as log:
            try:
                process = subprocess.run(
                    spec["command"],
                    cwd=spec.get("cwd"),
                    env=task_env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    timeout=float(spec.get("timeout_s", 3600)),
                    check=False,
                )
                code = process.returncode
            except subprocess.TimeoutExpired:
                code = -9
        outcome["exit_codes"].append(code)
        logging.getLogger("jobs").info(
            "%s task %d attempt %d exited %d", execution, index, attempt, code
        )
        if code == 0:
            outcome["succeeded"] = True
            break
    return outcome


def _execute_job(name: str, spec: dict, job: str, execution: str, env: dict, count: int) -> None:
    with ThreadPoolExecutor(max_workers=count) as pool:
        outcomes = list(
            pool.map(lambda i: _run_task(spec, job, execution, env, i, count), range(count))
        )
    failed = [o for o in outcomes if not o["succeeded"]]
    response = {
        "@type": "type.googleapis.com/google.cloud.run.v2.Execution",
        "name": execution,
        "taskCount": count,
        "succeededCount": count - len(failed),
        "failedCount": len(failed),
        "retriedCount": sum(o["attempts"] - 1 for o in outcomes),
        "tasks": outcomes,  # not in Cloud Run's Execution: the stand-in's own detail
    }
    result: dict = {"done": True, "response": response}
    if failed:
        result["error"] = {
            "code": 9,
            "status": "FAILED_PRECONDITION",
            "message": f"Task {failed[0]['index']} failed after {failed[0]['attempts']} "
            f"attempt(s), exit codes {failed[0]['exit_codes']}; the execution failed",
        }
    with _OPERATIONS_LOCK:
        _OPERATIONS[name].update(result)


def build_app(workflows_dir: Path, jobs_file: Path | None = None) -> FastAPI:
    app = FastAPI(title="workflows-emulator (local)")

    @app.post(JOB_RUN)
    async def run_job(project: str, location: str, job: str, request: Request):
        specs = json.loads(jobs_file.read_text()) if jobs_file and jobs_file.is_file() else {}
        spec = specs.get(job)
        if spec is None:
            return _api_error(404, "NOT_FOUND", f"job {job} is not declared ({jobs_file})")
        try:
            raw = await request.body()
            overrides = (json.loads(raw) if raw.strip() else {}).get("overrides") or {}
            count = int(overrides.get("taskCount") or spec.get("tasks", 1))
            env = dict(spec.get("env") or {})
            for container in overrides.get("containerOverrides") or []:
                for variable in container.get("env") or []:
                    env[str(variable["name"])] = str(variable.get("value", ""))
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            return _api_error(400, "INVALID_ARGUMENT", f"bad run request: {err}")
        if not 1 <= count <= 10_000:
            return _api_error(400, "INVALID_ARGUMENT", f"taskCount {count} not in 1..10000")
        parent = f"projects/{project}/locations/{location}"
        execution_id = f"{job}-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:5]}"
        name = f"{parent}/operations/{uuid.uuid4()}"
        execution = f"{parent}/jobs/{job}/executions/{execution_id}"
        operation = {"name": name, "done": False, "metadata": {"name": execution}}
        with _OPERATIONS_LOCK:
            _OPERATIONS[name] = dict(operation)
        threading.Thread(
            target=_execute_job,
            args=(name, spec, job, execution_id, env, count),
            daemon=True,
        ).start()
        return operation

    @app.get(OPERATION)
    def get_operation(project: str, location: str, operation: str):
        name = f"projects/{project}/locations/{location}/operations/{operation}"
        with _OPERATIONS_LOCK:
            found = _OPERATIONS.get(name)
            found = json.loads(json.dumps(found)) if found else None
        if found is None:
            return _api_error(404, "NOT_FOUND", f"no operation {name}")
        return found

    def find(workflow_id: str):
        for ext in (".workflows.yaml", ".yaml", ".yml"):
            path = workflows_dir / f"{workflow_id}{ext}"
            if path.is_file():
                return path
        return None

    @app.get("/healthz")
    def healthz():
        names = sorted(
            p.name.split(".")[0] for p in workflows_dir.iterdir() if p.suffix in (".yaml", ".yml")
        )
        return {"status": "ok", "workflows": names}

    @app.post(EXECUTIONS)
    async def execute(project: str, location: str, workflow_id: str, request: Request):
        path = find(workflow_id)
        if path is None:
            return JSONResponse(
                status_code=404,
                content={
                    "error": {
                        "code": 404,
                        "status": "NOT_FOUND",
                        "message": f"workflow '{workflow_id}' not found in {workflows_dir}",
                    }
                },
            )
        raw = await request.body()
        try:
            body = json.loads(raw) if raw.strip() else {}
            argument = body.get("argument")
            if isinstance(argument, str):
                argument = json.loads(argument) if argument.strip() else None
        except (ValueError, AttributeError) as err:
            return JSONResponse(
                status_code=400,
                content={
                    "error": {
                        "code": 400,
                        "status": "INVALID_ARGUMENT",
                        "message": f"bad request body: {err}",
                    }
                },
            )

        def run():
            with _LOCK:
                try:
                    config = engine.load_workflow(str(path))
                    main_wf = config["main"] if isinstance(config, dict) else {}
                    names = [
                        p if isinstance(p, str) else next(iter(p))
                        for p in main_wf.get("params", [])
                    ]
                    params = {names[0]: argument} if names and argument is not None else {}
                    for key in _ENV_KEYS:
                        os.environ.pop(key, None)
                    os.environ[
                        "GOOGLE_CLOUD_PROJECT_NUMBER"
                        if project.isnumeric()
                        else "GOOGLE_CLOUD_PROJECT_ID"
                    ] = project
                    os.environ["GOOGLE_CLOUD_LOCATION"] = location
                    os.environ["GOOGLE_CLOUD_WORKFLOW_ID"] = workflow_id
                    os.environ["GOOGLE_CLOUD_WORKFLOW_REVISION_ID"] = hashlib.sha256(
                        path.read_bytes()
                    ).hexdigest()[:6]
                    os.environ["GOOGLE_CLOUD_WORKFLOW_EXECUTION_ID"] = str(uuid.uuid4())
                    return 200, engine.execute_workflow(config, params)
                except BaseException as err:
                    logging.getLogger("workflows").exception("execution failed")
                    return 500, {"error": _error_map(err)}

        status, content = await run_in_threadpool(run)
        return JSONResponse(
            status_code=status, content=json.loads(json.dumps(content, default=str))
        )

    return app


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("workflows_dir", type=Path, help="directory of <workflow_id>.yaml files")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8095)
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--jobs-file", type=Path, default=None, help="Cloud Run jobs (JSON)")
    args = parser.parse_args()
    if not args.workflows_dir.is_dir():
        parser.error(f"not a directory: {args.workflows_dir}")
    logging.basicConfig(
        level=args.log_level, format="[%(asctime)s] %(name)s [%(levelname)s] %(message)s"
    )
    _patch_engine()
    uvicorn.run(
        build_app(args.workflows_dir.resolve(), args.jobs_file),
        host=args.host,
        port=args.port,
        log_level=args.log_level.lower(),
        # On SIGTERM: stop accepting, give in-flight executions 5 s, then exit.
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    cli()
