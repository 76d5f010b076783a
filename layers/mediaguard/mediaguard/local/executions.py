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
from typing import Any


class TerminalWatch:
    """Execution ARNs whose execution reached a terminal state, with a condition to wait on."""

    def __init__(self) -> None:
        self._done: set[str] = set()
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
                watch.ended(comm.execution.exec_arn)

        BaseExecutionWorkerCommunication.terminated = terminated

        def undo() -> None:
            BaseExecutionWorkerCommunication.terminated = original

        return undo

    def ended(self, arn: str) -> None:
        with self._cond:
            self._done.add(arn)
            self._cond.notify_all()

    def wait(self, arn: str, timeout: float) -> bool:
        """Block until the execution ``arn`` has ended (True) or ``timeout`` seconds pass (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: arn in self._done, timeout)


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
