#!/usr/bin/env python3
# Writes af-api/openapi.json (the document af-api serves at /api/openapi.json). Edit here, run, commit both.
import json
E = {"$ref": "#/components/schemas/Error"}
def err(desc): return {"description": desc, "content": {"application/json": {"schema": E}}}
ERRS = {
 "400": "malformed or invalid input (JSON, ids, values)", "401": "no bearer token, or a wrong one",
 "403": "the Host header is not allowed", "404": "no such resource or agent", "409": "conflict: exists already, or the agent is in the wrong state",
 "413": "the body is larger than 1 MiB", "415": "the body is not application/json",
 "429": "too many requests from this client (see Retry-After)",
 "502": "the tool behind this endpoint failed", "504": "the tool behind this endpoint timed out"}
def responses(ok_code, ok_schema, codes, ok_desc="ok", media="application/json"):
    r = {ok_code: {"description": ok_desc, "content": {media: {"schema": ok_schema}}}}
    for c in codes:
        r[c] = err(ERRS[c])
    return r
READ = ["400", "401", "403", "404", "429"]
TOOL = ["502", "504"]
BODY = ["413", "415"]
ALL = ["400", "401", "403", "404", "409", "413", "415", "429", "502", "504"]
def obj(props, required=(), extra=True):
    s = {"type": "object", "properties": props}
    if required: s["required"] = list(required)
    if not extra: s["additionalProperties"] = False
    return s
S = {"type": "string"}; I = {"type": "integer"}; B = {"type": "boolean"}; ANY = {}
def nul(s): return dict(s, nullable=True)
ID = {"type": "string", "pattern": "^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$", "description": "an agent id: letters, digits, - and _, not starting with -"}
idparam = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}, "description": "the agent's id"}
def body(schema, required=True):
    return {"required": required, "content": {"application/json": {"schema": schema}}}
def ref(n): return {"$ref": "#/components/schemas/" + n}
agent_config_props = {
  "id": ID, "type": {"type": "string", "enum": ["claude-code", "codex", "worker", "monitor"]},
  "projectId": {"type": "string", "minLength": 1, "maxLength": 256, "pattern": "^[^\\u0000-\\u001f\\u007f]+$"},
  "taskId": S, "capabilities": {"type": "array", "items": S},
  "maxConcurrentTasks": {"type": "integer", "minimum": 1, "maximum": 1024},
  "resourceLimits": obj({"memory": {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?(B|KB|MB|GB|TB|K|M|G|T)?$"},
                         "cpu": {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?$"},
                         "timeout": {"oneOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": "^[0-9]+(ms|s|m|h|d)$"}]}}, extra=False),
  "environment": {"type": "object", "additionalProperties": S},
  "workdir": S, "command": {"type": "array", "items": S, "minItems": 1}}
HOST = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"}
summary = obj({"id": S, "type": S, "projectId": S, "capabilities": {"type": "array", "items": S}, "status": S, "health": S,
  "pid": nul(I), "tmuxSession": S, "restarts": I, "failures": I, "costUsd": {"type": "number"}, "activity": nul(S), "inputPrompt": nul(S), "reason": nul(S),
  "createdAt": S, "startedAt": nul(S), "heartbeat": nul({"type": "object"}),
  "host": dict(S, description="with cluster=1: the host it runs on"), "hostReachable": dict(B, description="with cluster=1: whether its host's heartbeat is alive")},
  ["id", "type", "projectId", "status", "health"])
detail = obj({"id": S, "config": {"type": "object"}, "state": {"type": "object"}, "heartbeat": nul({"type": "object"}), "supervisorAlive": B},
  ["id", "config", "state", "supervisorAlive"])
MESSAGE = obj({"id": S, "from": S, "to": S, "kind": S, "priority": S, "attempts": I, "createdAt": S, "payload": ANY}, ["id", "kind", "priority"])
DISK = obj({"mountPoint": S, "fileSystem": S, "totalBytes": I, "availableBytes": I}, ["mountPoint", "fileSystem", "totalBytes", "availableBytes"])
comp = {"Error": obj({"error": S, "detail": S}, ["error", "detail"]),
  "AgentConfig": obj(agent_config_props, ["id", "type"], extra=False),
  "AgentConfigUpdate": obj(agent_config_props, [], extra=False),
  "AgentSummary": summary, "AgentDetail": detail,
  "Message": MESSAGE,
  "Alert": obj({"id": S, "level": {"type": "string", "enum": ["warning", "critical", "recovery"]}, "agent": S, "check": S, "message": S, "time": S, "acknowledged": B}, ["id", "level", "agent", "check", "acknowledged"]),
  "BusStats": obj({"queues": {"type": "array", "items": obj({"queue": S, "depth": I, "inFlight": I, "dead": I, "acked": I, "ackRate": {"type": "number", "description": "acks per second over the last minute"}, "pending": {"type": "object", "additionalProperties": I}}, ["queue", "depth"])},
                   "subscriptions": {"type": "array"}, "totals": {"type": "object"}, "error": {"type": "string", "description": "af-bus failed: why (the other fields are then absent)"}}),
  "Disk": DISK,
  "Host": obj({"cpus": dict(I, description="CPUs this process may use (affinity, cgroup quota)"),
               "cpuUsagePercent": nul({"type": "number", "minimum": 0, "maximum": 100, "description": "the host's CPU use, percent of all its CPUs, since the previous sample (af-api samples at most once a second, when asked); null until af-api has run for 200 ms"}),
               "loadAverage": {"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3, "description": "over 1, 5 and 15 minutes"},
               "memTotalBytes": I, "memAvailableBytes": I, "swapTotalBytes": I, "swapUsedBytes": I,
               "disks": {"type": "array", "items": ref("Disk"), "description": "each mounted filesystem once (network filesystems are not listed), by mount point"},
               "spoolDisk": dict(nul(DISK), description="the filesystem holding the spool ($AF_HOME); null if it is not among disks")},
              ["cpus", "cpuUsagePercent", "loadAverage", "memTotalBytes", "memAvailableBytes", "swapTotalBytes", "swapUsedBytes", "disks", "spoolDisk"])}
pub = {"security": []}
paths = {}
paths["/healthz"] = {"get": dict(pub, summary="liveness", operationId="healthz", responses=responses("200", obj({"ok": B}, ["ok"]), ["403", "429"]))}
paths["/"] = {"get": dict(pub, summary="the dashboard (HTML; the token comes in the URL fragment)", operationId="dashboard",
  responses=responses("200", {"type": "string"}, ["403", "429"], media="text/html"))}
paths["/api/openapi.json"] = {"get": dict(pub, summary="this document", operationId="openapi", responses=responses("200", {"type": "object"}, ["403", "429"]))}
paths["/metrics"] = {"get": {"summary": "the spool's and af-api's figures in the Prometheus text format 0.0.4 (no token needed from loopback, or from anyone with --metrics-public)",
  "operationId": "metrics", "security": [{"bearer": []}, {}],
  "responses": dict(responses("200", {"type": "string"}, ["401", "403", "429"], media="text/plain"), **{"500": err("the spool could not be read")})}}
SSE_EVENT = {"type": "object", "required": ["data"], "properties": {
  "data": {"type": "string", "description": "one event-log record, a JSON object (contentMediaType application/json)"},
  "id": {"type": "string", "pattern": "^[0-9]+:[0-9]+$", "description": "its place in the log, INODE:OFFSET: resume after it with ?since= or Last-Event-ID (agents events have none)"},
  "event": {"type": "string", "enum": ["message", "agents"], "description": "the default, message (an event-log record); agents with ?agents=true (data: {reset, agents, removed})"},
  "retry": {"type": "integer", "minimum": 0, "description": "milliseconds before EventSource reconnects"}}}
paths["/api/events"] = {"get": {"summary": "Server-Sent Events of the event log (token as a query parameter, since EventSource cannot send headers)",
  "operationId": "events", "security": [{"queryToken": []}, {"bearer": []}],
  "parameters": [{"name": "since", "in": "query", "schema": {"type": "string", "pattern": "^[0-9]+(:[0-9]+)?$"}, "description": "the id of the last event seen, to resume after it (or Last-Event-ID): INODE:OFFSET, which survives the log's rotation; a bare number is a byte offset in the live events.log"},
                 {"name": "recent", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 1000}, "description": "start with the last N events"},
                 {"name": "audit", "in": "query", "schema": B, "description": "include the API's audit records"},
                 {"name": "agents", "in": "query", "schema": B, "description": "add `agents` events: {reset, agents: [AgentSummary], removed: [id]}, the agents that changed (the first event: all of them, reset true)"}],
  # The schema of a text/event-stream response is that of one event, as EventSource hands it over
  # (OpenAPI 3.2's itemSchema; 3.0 tools such as schemathesis read `schema` so): `data` is one
  # event-log record as JSON, `id` its place in the log. Comments (keep-alives) are no events.
  "responses": responses("200", SSE_EVENT, ["400", "401", "403", "429"], media="text/event-stream")}}
paths["/api/agents/create"] = {"post": {"summary": "create agents (af-spawn create)", "operationId": "createAgent",
  "parameters": [{"name": "start", "in": "query", "schema": B, "description": "start them once created"}],
  "requestBody": body({"oneOf": [ref("AgentConfig"), {"type": "array", "items": ref("AgentConfig"), "minItems": 1}]}),
  "responses": responses("201", obj({"created": {"type": "array", "items": S}}, ["created"]), ALL, "created")}}
# Links let stateful fuzzing reach agents that exist: the id a create sent names them.
paths["/api/agents/create"]["post"]["responses"]["201"]["links"] = {
    op: {"operationId": op, "parameters": {"id": "$request.body#/id"}}
    for op in ["getAgent", "replaceAgent", "removeAgent", "operateAgent", "getStatus", "setStatus", "checkStatus",
               "messageHistory", "sendMessage", "receiveMessage", "settleMessage", "clearMessages", "healthHistory",
               "agentOutput", "agentConversation", "listCheckpoints", "createCheckpoint", "sendRequest"]}
paths["/api/agents"] = {
  "get": {"summary": "list agents", "operationId": "listAgents", "parameters": [
      {"name": "project", "in": "query", "schema": S}, {"name": "type", "in": "query", "schema": {"type": "string", "enum": ["claude-code", "codex", "worker", "monitor"]}},
      {"name": "status", "in": "query", "schema": {"type": "string", "enum": ["created", "starting", "running", "paused", "stopping", "stopped", "failed"]}},
      {"name": "health", "in": "query", "schema": {"type": "string", "enum": ["unknown", "healthy", "degraded", "unhealthy"]}},
      {"name": "host", "in": "query", "schema": HOST, "description": "one host's agents (this host is AF_HOST, else the hostname; without cluster, another host's name lists none)"},
      {"name": "cluster", "in": "query", "schema": {"type": "string", "enum": ["true", "false", "1", "0"]}, "description": "every bridged host's agents, from the Redis of AF_REDIS_URL as GET /api/cluster lists them, each with host and hostReachable (404 without AF_REDIS_URL, 502 when Redis cannot be reached)"}],
    "responses": responses("200", obj({"agents": {"type": "array", "items": ref("AgentSummary")}, "count": I}, ["agents", "count"]), ["400", "401", "403", "404", "429", "502"])},
  "post": {"summary": "one lifecycle action over many agents", "operationId": "bulkAgents",
    "requestBody": body(obj({"action": {"type": "string", "enum": ["start", "stop", "pause", "resume", "restart", "remove"]},
        "ids": {"type": "array", "items": ID, "minItems": 1, "maxItems": 1000}, "graceful": B}, ["action", "ids"])),
    "responses": responses("200", obj({"action": S, "results": {"type": "array", "items": obj({"id": S, "ok": B, "status": I}, ["id", "ok", "status"])}}, ["action", "results"]),
        ["400", "401", "403", "413", "415", "429"])},
  "delete": {"summary": "clean up: af-spawn gc", "operationId": "cleanupAgents", "responses": responses("200", obj({"cleanup": ANY}, ["cleanup"]), ["401", "403", "409", "413", "415", "429"] + TOOL)}}
action = obj({"action": {"type": "string", "enum": ["start", "stop", "pause", "resume", "restart", "checkpoint", "rollback", "remove"]},
  "graceful": B, "description": {"type": "string", "maxLength": 1000}, "checkpointId": S}, ["action"])
paths["/api/agents/{id}"] = {"parameters": [idparam],
  "get": {"summary": "an agent's config, state and heartbeat", "operationId": "getAgent", "responses": responses("200", ref("AgentDetail"), ["400", "401", "403", "404", "429"])},
  "put": {"summary": "replace a stopped agent's config", "operationId": "replaceAgent", "requestBody": body(ref("AgentConfigUpdate")),
    "responses": responses("200", ref("AgentDetail"), ALL)},
  "delete": {"summary": "remove an agent (af-spawn rm)", "operationId": "removeAgent",
    "parameters": [{"name": "force", "in": "query", "schema": B, "description": "stop it first if it runs"}],
    "responses": responses("200", obj({"removed": S}, ["removed"]), ALL)},
  "patch": {"summary": "a lifecycle operation", "operationId": "operateAgent",
    "parameters": [dict(idparam, example="deploy-1")],
    "requestBody": {"required": True, "content": {"application/json": {"schema": action, "examples": {
        "checkpoint": {"summary": "af-checkpoint create (the result is the checkpoint)", "value": {"action": "checkpoint", "description": "before the refactor"}},
        "rollback": {"summary": "af-checkpoint rollback", "value": {"action": "rollback", "checkpointId": "ck-1795534568723-f732"}},
        "stop": {"summary": "af-spawn stop --force", "value": {"action": "stop", "graceful": False}}}}}},
    "responses": responses("200", obj({"id": S, "action": S, "status": nul(S), "result": ANY}, ["id", "action"]), ALL)}}
paths["/api/agents/{id}/status"] = {"parameters": [idparam],
  "get": {"summary": "status and health", "operationId": "getStatus", "responses": responses("200",
      obj({"id": S, "status": S, "health": S, "reason": nul(S), "supervisorAlive": B, "pid": nul(I), "heartbeat": nul({"type": "object"})}, ["id", "status", "health"]),
      ["400", "401", "403", "404", "429"])},
  "post": {"summary": "a health check now (af-health check)", "operationId": "checkStatus",
    "responses": responses("200", obj({"id": S, "healthy": B, "health": S, "check": obj({"id": S, "status": S, "health": S, "checks": {"type": "array", "items": obj({"name": S, "level": S, "message": S})}}, ["id", "health", "checks"])}, ["id", "healthy", "check"]), ALL)},
  "put": {"summary": "the status wanted: running, paused or stopped", "operationId": "setStatus",
    "requestBody": body(obj({"status": {"type": "string", "enum": ["running", "paused", "stopped"]}, "graceful": B}, ["status"])),
    "responses": responses("200", obj({"id": S, "status": nul(S), "action": nul(S)}, ["id"]), ALL)}}
paths["/api/agents/{id}/messages"] = {"parameters": [idparam],
  "get": {"summary": "message history (af-bus history): what the queue received and acked, oldest first", "operationId": "messageHistory", "responses": responses("200", obj({"id": S, "messages": {"type": "array", "items": ref("Message")}}, ["id", "messages"]), ["400", "401", "403", "404", "409", "429"] + TOOL)},
  "post": {"summary": "send a message (af-bus send); the answer holds the message as delivered", "operationId": "sendMessage",
    "requestBody": body(obj({"payload": ANY, "priority": {"type": "string", "enum": ["critical", "high", "normal", "low"]},
        "kind": {"type": "string", "enum": ["request", "response", "event", "broadcast", "task"]}}, ["payload"])),
    "responses": responses("201", obj({"id": S, "sent": ref("Message")}, ["id", "sent"]), ALL, "sent")},
  "put": {"summary": "receive the next message (af-bus recv; back in the queue unless acked within 30 s); null when there is none", "operationId": "receiveMessage", "responses": responses("200", obj({"id": S, "message": nul(MESSAGE)}, ["id", "message"]), ALL)},
  "patch": {"summary": "ack or nack a message", "operationId": "settleMessage",
    "requestBody": body(obj({"action": {"type": "string", "enum": ["ack", "nack"]}, "messageId": S}, ["action", "messageId"])),
    "responses": responses("200", obj({"id": S, "action": S, "messageId": S}, ["id", "action", "messageId"]), ALL)},
  "delete": {"summary": "clear the queue (af-bus clear): waiting, claimed, dead and acked messages", "operationId": "clearMessages", "responses": responses("200", obj({"id": S, "cleared": obj({"queue": S, "removed": I}, ["removed"])}, ["id", "cleared"]), ALL)}}
paths["/api/agents/{id}/health"] = {"parameters": [idparam],
  "get": {"summary": "health history (af-health history): CPU, memory and checks over time", "operationId": "healthHistory",
    "responses": responses("200", obj({"id": S, "history": ANY}, ["id", "history"]), ["400", "401", "403", "404", "409", "429"] + TOOL)}}
paths["/api/orchestrator"] = {
  "get": {"summary": "system status and metrics", "operationId": "systemStatus", "responses": responses("200",
      obj({"agents": {"type": "object"}, "system": ref("Host"), "api": {"type": "object"}, "bus": ref("BusStats"), "eventLogBytes": {"type": "integer", "description": "bytes the event log takes on disk, its rotated generations included"}},
          ["agents", "system", "api", "bus"]), ["401", "403", "429"])},
  "post": {"summary": "a system operation: gc, check or broadcast", "operationId": "systemOperation",
    "requestBody": body(obj({"action": {"type": "string", "enum": ["gc", "check", "broadcast"]}, "payload": ANY}, ["action"])),
    "responses": responses("200", obj({"action": S, "result": ANY}, ["action"]), ALL)},
  "put": {"summary": "the API's configuration", "operationId": "configure",
    "requestBody": body(obj({"rateLimit": {"type": "number", "minimum": 0, "maximum": 1e9}, "burst": {"type": "integer", "minimum": 1, "maximum": 1000000}}, extra=False)),
    "responses": responses("200", obj({"rateLimit": {"type": "number"}, "burst": I}, ["rateLimit", "burst"]), ["400", "401", "403", "413", "415", "429"])},
  "delete": {"summary": "orderly shutdown of every agent", "operationId": "shutdownAgents", "responses": responses("200", obj({"stopped": ANY}, ["stopped"]), ALL)}}
paths["/api/alerts"] = {"get": {"summary": "alerts (af-health alerts)", "operationId": "listAlerts",
  "parameters": [{"name": "all", "in": "query", "schema": B, "description": "acknowledged ones too"}],
  "responses": responses("200", obj({"alerts": {"type": "array", "items": ref("Alert")}}, ["alerts"]), ["400", "401", "403", "429"] + TOOL)}}
paths["/api/alerts/{alertId}/ack"] = {"parameters": [{"name": "alertId", "in": "path", "required": True, "schema": S}],
  "post": {"summary": "acknowledge an alert (af-health ack)", "operationId": "ackAlert", "responses": responses("200", obj({"acknowledged": S, "alert": ref("Alert")}, ["acknowledged", "alert"]), ALL)}}
POOL_LANE = obj({"project": S, "lane": {"type": "string", "enum": ["critical", "high", "normal", "low"]},
  "stream": dict(S, description="its Redis stream: af:pool:PROJECT for normal, af:pool-LANE:PROJECT for the others"),
  "waiting": dict(I, description="entries no host's bridge has read yet"),
  "pending": dict(I, description="entries a host's bridge read and has not acked yet"),
  "pendingBy": {"type": "object", "additionalProperties": I, "description": "the pending ones by host"},
  "oldestWaitingMs": nul(dict(I, description="how long the oldest waiting entry has waited (by Redis's clock); null when none waits"))},
  ["project", "lane", "stream", "waiting", "pending", "pendingBy", "oldestWaitingMs"])
cluster_agent = dict(summary, properties=dict(summary["properties"], host=S, hostReachable=B), required=summary["required"] + ["host", "hostReachable"])
paths["/api/cluster"] = {"get": {"summary": "every bridged host and its agents, as their af-bus bridge last published them to Redis (AF_REDIS_URL); the records of af-spawn ls --cluster --json", "operationId": "getCluster",
  "responses": responses("200", obj({"hosts": {"type": "array", "items": obj({"host": S, "reachable": B, "heartbeatAt": nul(S), "agents": I,
      "counts": {"type": "object", "additionalProperties": I}}, ["host", "reachable", "agents", "counts"])},
    "agents": {"type": "array", "items": cluster_agent}, "thisHost": dict(S, description="this af-api's host: AF_HOST, else the hostname"),
    "pools": {"type": "array", "description": "every lane of every cluster-wide pool (the projects of af:pools, by name, their lanes most urgent first), as af-bus stats --cluster --json lists them", "items": POOL_LANE}},
    ["hosts", "agents", "thisHost", "pools"]), ["400", "401", "403", "404", "429", "502"])}}
# The cockpit: an agent's output, conversation, checkpoints, requests with their answers, and the bus's flow.
CKPT_ID = {"name": "ckpt", "in": "path", "required": True, "schema": {"type": "string"}, "description": "the checkpoint's id"}
CHECKPOINT = obj({"id": S, "agent": S, "description": S, "createdAt": S, "holds": {"type": "array", "items": S}, "workdir": S,
  "tree": {"type": "object"}, "messages": I, "conversation": {"type": "object"}, "tookMs": I}, ["id", "agent", "createdAt", "holds"])
comp["Checkpoint"] = CHECKPOINT
comp["ConversationMessage"] = obj({"cursor": I, "role": {"type": "string", "enum": ["user", "assistant", "tool"]}, "text": S,
  "tools": {"type": "array", "items": obj({"name": S, "summary": S}, ["name", "summary"])}, "time": S, "error": B, "truncated": B}, ["cursor", "role", "text"])
paths["/api/agents/{id}/output"] = {"parameters": [idparam],
  "get": {"summary": "the last lines the agent printed (its tmux pane, ANSI sequences kept), and the place after them", "operationId": "agentOutput",
    "parameters": [{"name": "lines", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 10000}, "description": "how many lines (default 100)"}],
    "responses": responses("200", obj({"id": S, "text": S, "offset": dict(I, minimum=0, description="the place in the log after the text: the stream resumes from it")}, ["id", "text", "offset"]), READ + ["409"] + TOOL)}}
OUTPUT_EVENT = {"type": "object", "required": ["data"], "properties": {
  "data": {"type": "string", "description": "a chunk of output as JSON: {text, restarted} (restarted: the log was rotated, the text starts it anew)"},
  "id": {"type": "string", "pattern": "^[0-9]+$", "description": "the place in the log after the chunk: resume after it with ?since= or Last-Event-ID"},
  "event": {"type": "string", "description": "always the default, message"},
  "retry": {"type": "integer", "minimum": 0}}}
paths["/api/agents/{id}/output/stream"] = {"parameters": [idparam],
  "get": {"summary": "the agent's output live, as Server-Sent Events (token as a query parameter, since EventSource cannot send headers)", "operationId": "agentOutputStream",
    "security": [{"queryToken": []}, {"bearer": []}],
    "parameters": [{"name": "since", "in": "query", "schema": {"type": "string", "pattern": "^[0-9]+$"}, "description": "the id of the last event seen (or Last-Event-ID)"},
                   {"name": "lines", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 10000}, "description": "without since: start with the last N lines (default 0)"}],
    "responses": responses("200", OUTPUT_EVENT, ["400", "401", "403", "404", "409", "429"], media="text/event-stream")}}
paths["/api/agents/{id}/conversation"] = {"parameters": [idparam],
  "get": {"summary": "an agent CLI's conversation (claude-code): messages with tool calls summarized, paged, and what it has spent against its budget; 400 for agents that run no agent CLI", "operationId": "agentConversation",
    "parameters": [{"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0}, "description": "the cursor of the last message seen (default 0: from the start)"},
                   {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}, "description": "at most this many messages (default 100)"}],
    "responses": responses("200", obj({"id": S, "cli": S, "session": nul(S), "messages": {"type": "array", "items": ref("ConversationMessage")},
        "next": dict(I, description="pass as after for the next page"), "more": B, "costUsd": {"type": "number"}, "budgetUsd": nul({"type": "number"}),
        "activity": nul(S), "waitingUntil": nul(S), "inputPrompt": nul(S)}, ["id", "cli", "messages", "next", "more", "costUsd"]), READ + ["409"] + TOOL)}}
paths["/api/agents/{id}/checkpoints"] = {"parameters": [idparam],
  "get": {"summary": "the agent's checkpoints, oldest first (af-checkpoint ls)", "operationId": "listCheckpoints",
    "responses": responses("200", obj({"id": S, "checkpoints": {"type": "array", "items": ref("Checkpoint")}}, ["id", "checkpoints"]), READ + ["409"] + TOOL)},
  "post": {"summary": "take a checkpoint (af-checkpoint create)", "operationId": "createCheckpoint",
    "requestBody": body(obj({"description": {"type": "string", "maxLength": 1000}}), required=False),
    "responses": dict(responses("201", obj({"id": S, "checkpoint": ref("Checkpoint")}, ["id", "checkpoint"]), ALL, "taken"),
      **{"201": {"description": "taken", "content": {"application/json": {"schema": obj({"id": S, "checkpoint": ref("Checkpoint")}, ["id", "checkpoint"])}},
         "links": {op: {"operationId": op, "parameters": {"id": "$request.path.id", "ckpt": "$response.body#/checkpoint/id"}} for op in ["checkpointDiff", "rollbackCheckpoint"]}}})}}
paths["/api/agents/{id}/checkpoints/{ckpt}/diff"] = {"parameters": [idparam, CKPT_ID],
  "get": {"summary": "what changed in the working tree since the checkpoint: the files and the unified diff, cut at maxBytes", "operationId": "checkpointDiff",
    "parameters": [{"name": "maxBytes", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 4194304}, "description": "cut the diff here (default 262144)"}],
    "responses": responses("200", obj({"id": S, "checkpoint": S, "files": {"type": "array", "items": obj({"status": {"type": "string", "enum": ["A", "D", "M", "T"]}, "path": S}, ["status", "path"])},
        "diff": S, "bytes": dict(I, description="the whole diff's size"), "truncated": B}, ["id", "checkpoint", "files", "diff", "bytes", "truncated"]), READ + ["409"] + TOOL)}}
paths["/api/agents/{id}/checkpoints/{ckpt}/rollback"] = {"parameters": [idparam, CKPT_ID],
  "post": {"summary": "roll back to the checkpoint (af-checkpoint rollback: config, messages, conversation, working tree; a running agent restarts)", "operationId": "rollbackCheckpoint",
    "responses": responses("200", obj({"id": S, "checkpoint": S, "rolledBack": ANY}, ["id", "checkpoint", "rolledBack"]), ALL)}}
paths["/api/agents/{id}/requests"] = {"parameters": [idparam],
  "post": {"summary": "send a task or request with a reply queue (as af-bus request); its answer is read apart, by the request's id, until timeoutSecs pass", "operationId": "sendRequest",
    "requestBody": body(obj({"payload": ANY, "kind": {"type": "string", "enum": ["task", "request"]}, "priority": {"type": "string", "enum": ["critical", "high", "normal", "low"]},
        "timeoutSecs": {"type": "integer", "minimum": 1, "maximum": 3600}}, ["payload"])),
    "responses": dict(responses("201", obj({"id": S, "request": S, "sent": ref("Message")}, ["id", "request", "sent"]), ALL, "sent"),
      **{"201": {"description": "sent", "content": {"application/json": {"schema": obj({"id": S, "request": S, "sent": ref("Message")}, ["id", "request", "sent"])}},
         "links": {"requestAnswer": {"operationId": "requestAnswer", "parameters": {"id": "$request.path.id", "requestId": "$response.body#/request"}}}}})}}
paths["/api/agents/{id}/requests/{requestId}"] = {"parameters": [idparam, {"name": "requestId", "in": "path", "required": True, "schema": S}],
  "get": {"summary": "a request's answer: waiting, or answered with the response; 404 once its time is up", "operationId": "requestAnswer",
    "responses": responses("200", obj({"id": S, "request": S, "state": {"type": "string", "enum": ["waiting", "answered"]}, "answer": nul(MESSAGE), "secondsLeft": I},
        ["id", "request", "state", "answer"]), READ + ["409"] + TOOL)}}
paths["/api/agents/{id}/interrupt"] = {"parameters": [idparam],
  "post": {"summary": "interrupt a claude-code agent's running turn (af-bus interrupt; its task is answered interrupted); interrupted false with the reason when no turn runs", "operationId": "interruptAgent",
    "responses": responses("200", obj({"id": S, "interrupted": B, "reason": nul(S), "status": S}, ["id", "interrupted"]), ALL)}}
paths["/api/flow"] = {"get": {"summary": "the bus's message flow over a window, from its own records: edges by sender, queue and kind (count, bytes, send-to-ack p50 and p99), and every queue's depth, in flight, dead letters and oldest waiting age", "operationId": "messageFlow",
  "parameters": [{"name": "window", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 86400}, "description": "seconds (default 60)"}],
  "responses": responses("200", obj({"windowSecs": I, "at": S,
      "edges": {"type": "array", "items": obj({"from": S, "to": S, "kind": S, "count": I, "bytes": I, "p50Ms": I, "p99Ms": I}, ["from", "to", "kind", "count", "bytes", "p50Ms", "p99Ms"])},
      "queues": {"type": "array", "items": obj({"queue": S, "depth": I, "inFlight": I, "dead": I, "acked": I, "oldestWaitingMs": nul(I)}, ["queue", "depth", "inFlight", "dead", "acked", "oldestWaitingMs"])}},
      ["windowSecs", "edges", "queues"]), ["400", "401", "403", "429"] + TOOL)}}
doc = {"openapi": "3.0.3", "info": {"title": "AgentFlow af-api", "version": "0.1.0",
  "description": "The seed's REST API over the AgentFlow spool. Every change runs the AgentFlow program a shell user would (af-spawn, af-bus, af-health, af-checkpoint), so the CLI and the API agree. Errors are {error, detail}."},
  "servers": [{"url": "/"}], "security": [{"bearer": []}], "paths": paths,
  "components": {"schemas": comp, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
     "queryToken": {"type": "apiKey", "in": "query", "name": "token"}}}}
import os; open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../af-api/openapi.json"), "w").write(json.dumps(doc, indent=1) + "\n")
