"""Wake whoever waits for a Step Functions execution the moment moto's interpreter ends it.

moto runs each execution on a thread of its own and, when the program stops (succeeded,
failed, aborted or timed out), records the status through its worker-communication
object. Polling DescribeExecution instead cost a botocore round trip through moto every
10 ms (~27 per 12 MP image), each holding the GIL the handlers need: 153 of 244 samples
of local mode's orchestration time in a sampled profile on a loaded machine (issue 16).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import lru_cache
from typing import Any


class TerminalWatch:
    """Execution ARNs whose execution reached a terminal state, with a condition to wait on.

    Only the newest ``keep`` ended executions are remembered, so a long ``serve`` does not
    grow without bound. Forgetting is safe: ``LocalCloud.wait`` only waits on an execution
    DescribeExecution reports RUNNING, and reads an older one's states from its history.
    """

    def __init__(self, keep: int = 10_000) -> None:
        self._keep = keep
        # arn -> the states it entered (None: unknown), oldest first. Read from the
        # interpreter's own history at the end: GetExecutionHistory through moto's
        # serializer cost ~30 ms per image even without its payloads (issue 16).
        self._ended: dict[str, list[str] | None] = {}
        self._cond = threading.Condition()

    def install(self) -> Callable[[], None]:
        """Hook moto's end-of-execution callback; returns the function that undoes it."""
        from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

        original = BaseExecutionWorkerCommunication.terminated
        watch = self

        def terminated(comm: BaseExecutionWorkerCommunication) -> None:
            try:
                original(comm)  # status, stop date and output first: the waiter reads them next
            finally:
                watch.ended(comm.execution.exec_arn, _entered_states(comm.execution))

        BaseExecutionWorkerCommunication.terminated = terminated

        def undo() -> None:
            BaseExecutionWorkerCommunication.terminated = original

        return undo

    def ended(self, arn: str, entered: list[str] | None = None) -> None:
        with self._cond:
            self._ended.pop(arn, None)
            self._ended[arn] = entered
            while len(self._ended) > self._keep:
                del self._ended[next(iter(self._ended))]
            self._cond.notify_all()

    def entered(self, arn: str) -> list[str] | None:
        """The names of the states the ended execution ``arn`` entered, in order (None: unknown)."""
        with self._cond:
            return self._ended.get(arn)

    def wait(self, arn: str, timeout: float) -> bool:
        """Block until the execution ``arn`` has ended (True) or ``timeout`` seconds pass (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: arn in self._ended, timeout)


def _entered_states(execution: Any) -> list[str] | None:
    # Never raises: it runs in the end-of-execution callback, before the waiter is woken;
    # None sends ``LocalCloud.wait`` to GetExecutionHistory instead.
    try:
        events = execution.exec_worker.env.event_manager.get_event_history()
        return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
    except Exception:  # noqa: BLE001 - an execution that never ran has no interpreter environment
        return None


def reuse_parsed_programs_and_clients() -> Callable[[], None]:
    """Parse each state-machine definition once, and reuse moto's Lambda clients; returns the undo.

    moto re-parses the ASL with its ANTLR parser at every execution start (~25 ms, ~70 ms
    on a loaded machine) and builds a new boto3 client for every Lambda task (~10 ms each,
    6-7 per still). The parsed program is immutable (the interpreter keeps an execution's
    state in its Environment), so executions can share it, as they share the definition;
    boto3 clients are thread-safe, but creating them concurrently is not, hence the lock.
    """
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    original_entrypoint = ExecutionWorker._get_evaluation_entrypoint
    original_client_for = lambda_eval_utils.boto_client_for
    programs: dict[str, Any] = {}
    clients: dict[tuple[str, str], Any] = {}
    lock = threading.Lock()

    def entrypoint(worker: ExecutionWorker) -> Any:
        definition = worker._evaluation_details.state_machine_details.definition
        with lock:
            if definition not in programs:
                programs[definition] = AmazonStateLanguageParser.parse(definition)[0]
            return programs[definition]

    def client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        # moto's own builder ignores state_credentials (fixed test keys), so the client
        # depends on region and service only.
        with lock:
            if (region, service) not in clients:
                clients[(region, service)] = original_client_for(region, service)
            return clients[(region, service)]

    ExecutionWorker._get_evaluation_entrypoint = entrypoint
    lambda_eval_utils.boto_client_for = client_for

    def undo() -> None:
        ExecutionWorker._get_evaluation_entrypoint = original_entrypoint
        lambda_eval_utils.boto_client_for = original_client_for

    return undo


def share_botocore_loader() -> Callable[[], None]:
    """Give every pynamodb session one botocore data loader; returns the undo.

    pynamodb keeps a botocore session per thread, and moto runs each Lambda task of an
    execution on a new thread, so every handler's first table call built a session whose
    loader parsed endpoints.json and the DynamoDB model again: ~90 ms of GIL-held JSON
    decoding per image in a sampled ``scan`` (issue 16), work a Lambda container does once.
    The first session's own loader (built from its configured data path) is the one shared,
    and a loader only reads data files, so sharing it changes no answer.
    """
    import pynamodb.connection.base as pynamodb_base

    original = pynamodb_base.get_session
    shared: list[Any] = []
    lock = threading.Lock()

    def get_session() -> Any:
        session = original()
        with lock:
            if not shared:
                shared.append(session.get_component("data_loader"))
        session.register_component("data_loader", shared[0])
        return session

    pynamodb_base.get_session = get_session

    def undo() -> None:
        pynamodb_base.get_session = original

    return undo


def cache_json_paths() -> Callable[[], None]:
    """Parse each JSONPath of the state machine once; returns the undo.

    moto's interpreter calls ``jsonpath_ng.parse`` for every InputPath, ResultPath and
    ``.$`` field it evaluates, and jsonpath_ng builds a new PLY parser per call: about 40
    ms of GIL-held work per image in a sampled ``scan`` (issue 16). A parsed path is not
    changed by ``find``, so executions and threads can share it.
    """
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    originals = {json_path: json_path.parse, result_path: result_path.parse}
    for module, parse in originals.items():
        module.parse = lru_cache(maxsize=1024)(parse)

    def undo() -> None:
        for module, parse in originals.items():
            module.parse = parse

    return undo


def honour_include_execution_data() -> Callable[[], None]:
    """``GetExecutionHistory(includeExecutionData=False)`` leaves out inputs and outputs, as
    Step Functions does and moto does not; returns the undo.

    ``LocalCloud.wait`` only needs the names of the states entered; serialising every
    state's payloads through moto's response layer cost ~40 ms per image (issue 16).
    """
    from moto.core.responses import ActionResult
    from moto.stepfunctions.responses import StepFunctionResponse

    original = StepFunctionResponse.get_execution_history
    data_fields = {"input", "output", "inputDetails", "outputDetails"}

    def get_execution_history(self: Any) -> Any:
        if self._get_param("includeExecutionData", True) is not False:
            return original(self)
        history = self.stepfunction_backend.get_execution_history(self._get_param("executionArn"))
        events = [{k: ({f: v for f, v in d.items() if f not in data_fields}
                       if k.endswith("EventDetails") and isinstance(d, dict) else d)
                   for k, d in event.items()} for event in history["events"]]
        return ActionResult({"events": events})

    StepFunctionResponse.get_execution_history = get_execution_history

    def undo() -> None:
        StepFunctionResponse.get_execution_history = original

    return undo
