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
  with `auth: {type: OIDC}` sent without a token (upstream fails them).
"""

import argparse
import hashlib
import json
import logging
import os
import threading
import uuid
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
        if isinstance(auth, dict) and auth.get("type") == "OIDC":
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


def build_app(workflows_dir: Path) -> FastAPI:
    app = FastAPI(title="workflows-emulator (local)")

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
    args = parser.parse_args()
    if not args.workflows_dir.is_dir():
        parser.error(f"not a directory: {args.workflows_dir}")
    logging.basicConfig(
        level=args.log_level, format="[%(asctime)s] %(name)s [%(levelname)s] %(message)s"
    )
    _patch_engine()
    uvicorn.run(
        build_app(args.workflows_dir.resolve()),
        host=args.host,
        port=args.port,
        log_level=args.log_level.lower(),
        # On SIGTERM: stop accepting, give in-flight executions 5 s, then exit.
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    cli()
