"""`parcours local`: the real template on moto, the real handlers in-process, the HTTP API on localhost. What AWS
would do and moto does not is done here, and only that, in parts that LocalRuntime assembles (each a mixin on the
state they share, state.py):

- runtime.py: LocalRuntime: starts moto, deploys the stack (filling in what moto's CloudFormation skips), loads the
  handlers, starts the rest;
- emulation.py: what moto lacks while the stack runs: Lambda handlers run in-process, SNS delivered to functions,
  the tags of sent emails kept for the SES events `/_local/ses-event` publishes, the attributes of SMS kept;
- api.py: the template's HTTP API routes as API Gateway serves them (moto skips AWS::ApiGatewayV2), and `/_local/...`;
- outbox.py: what was sent, read back from SES and SNS (`/_local/outbox`, `/_local/outbox.html`);
- pollers.py: Lambda's SQS pollers (FIFO draining, the standard queues whose retries matter) and the daily runs;
- timelines.py: simulated time: scaled, each execution on its own timeline as in AWS, or skipped (skipped.py, which
  moves only when a client asks: `/_local/advance`, `/_local/run-until-idle`).
"""

from infra.local.emulation import InvocationContext
from infra.local.runtime import LocalRuntime, LocalRuntimeError

__all__ = ["InvocationContext", "LocalRuntime", "LocalRuntimeError"]
