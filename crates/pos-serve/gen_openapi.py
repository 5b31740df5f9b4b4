# Writes openapi.json (the checked-in API contract): python3 gen_openapi.py > openapi.json
# Edit here, regenerate, and run `cargo test -p pos-serve --test openapi` (it checks the routes
# and real answers against the JSON).
import json
def ref(n): return {"$ref": f"#/components/schemas/{n}"}
def nul(t): return {"type":[t,"null"]}
def err_resp(desc): return {"description": desc, "content": {"application/json": {"schema": ref("ErrorBody")}}}
def ok(desc, schema, code="200"):
    return {code: {"description": desc, "content": {"application/json": {"schema": schema}}}}
auth_errors = {"401": err_resp("No or wrong bearer token (TCP listener, or the socket with token_on_socket).")}
id_param = {"name":"id","in":"path","required":True,"schema":{"type":"integer","minimum":1},"description":"Journal id of the transaction."}
TXN_PROPS = {
 "id":{"type":"integer"},
 "operation":{"type":"string","enum":["sale","preauth","completion","void","refund"]},
 "state":ref("State"),
 "done":{"type":"boolean","description":"Resting state and no longer running: the outcome is final for the POS (a reversal or owed receipt may still move on in the background)."},
 "amount":{"type":"integer","description":"Minor units."},
 "currency":{"type":"integer","description":"ISO 4217 numeric."},
 "pan_masked":nul("string"),
 "entry_mode":nul("string"),
 "aid":nul("string"),"label":nul("string"),
 "stan":nul("integer"),"rrn":nul("string"),"auth_code":nul("string"),"response_code":nul("string"),
 "reason":nul("string"),"original_id":nul("integer"),"no_receipt":{"type":"boolean"},"voided":{"type":"boolean"},
 "completed_by":nul("integer"),"reversal_reason":nul("string"),"reversal_attempts":{"type":"integer"},
 "next_attempt_ms":nul("integer"),"receipts_printed":{"type":"integer"},"created_ms":{"type":"integer"},"updated_ms":{"type":"integer"},
 "summary":{"type":"string","description":"One sentence for a person: what happened and what it means for the customer."},
 "links":{"type":"object","additionalProperties":{"type":"string"},"description":"Only in the 202 answer of POST /v1/transactions."},
}
TXN_REQ = [k for k in TXN_PROPS if k!="links"]
DEV_PROPS = {
 "uri":{"type":"string"},
 "state":{"type":"string","enum":["ready","fault","missing","not_configured"]},
 "fault":nul("string"),
 "detail":{"type":"string"},
 "info":nul("string"),
 "card_present":{"type":"boolean","description":"Chip reader only."},
 "conditions":{"type":"array","items":{"type":"string"},"description":"Printer only: paper_near_end, paper_out, cover_open, cutter_jam, offline, ..."},
 "since_ms":{"type":"integer"},"checked_ms":{"type":"integer"},
 "health":{"oneOf":[{"type":"null"},ref("HealthSummary")]},
 "reopen_attempts":{"type":"integer"},
}
doc = {
 "openapi":"3.1.0",
 "info":{"title":"POS lane service (posctl serve)","version":"0.1.0",
   "description":"The local API of one lane's terminal service. Listens on a Unix socket (access by file permissions: owner and group pos) or on 127.0.0.1 with a bearer token read from the service's token file (mode 0640, group pos). One transaction at a time per lane: a second one is refused with 409 busy. Amounts are in minor units. No full PAN, track data, CVV or PIN ever appears here: card numbers are masked (first 6, last 4)."},
 "servers":[{"url":"http://127.0.0.1:8780"}],
 "security":[{"bearer":[]}],
 "paths":{},
 "components":{"securitySchemes":{"bearer":{"type":"http","scheme":"bearer","description":"The contents of the token file (api.token_file)."}},"schemas":{}},
}
S = doc["components"]["schemas"]
S["State"]={"type":"string","enum":["created","card_read","armed","sent","host_approved","committed","printing","completed","declined","aborted","reversal_pending","reversed","reversal_stuck","receipt_owed"]}
S["ApiError"]={"type":"object","required":["kind","message"],"additionalProperties":False,"properties":{
  "kind":{"type":"string","enum":["invalid_input","unauthorized","not_found","no_route","method_not_allowed","busy","too_late","not_simulated","shutting_down","overloaded","device","journal","internal","timeout","request_timeout","too_large","sales_blocked","settlement_refused","settlement_unfinished"]},
  "message":{"type":"string"},"current":{"type":"integer","description":"For busy: the transaction in progress."}}}
S["ErrorBody"]={"type":"object","required":["error"],"additionalProperties":False,"properties":{"error":ref("ApiError")}}
S["Transaction"]={"type":"object","required":TXN_REQ,"additionalProperties":False,"properties":TXN_PROPS}
S["TransactionList"]={"type":"object","required":["transactions"],"additionalProperties":False,"properties":{"transactions":{"type":"array","items":ref("Transaction")}}}
S["StartRequest"]={"type":"object","additionalProperties":False,"properties":{
  "operation":{"type":"string","enum":["sale","preauth","completion","void","refund"],"default":"sale"},
  "amount":{"type":"integer","minimum":0,"description":"Minor units (1250 = 12.50). Required except for a void (the original's amount is used)."},
  "entry":{"type":"string","enum":["chip","swipe"],"default":"chip"},
  "original":{"type":"integer","description":"The original transaction: the pre-auth a completion completes, the sale a void voids."},
  "no_receipt":{"type":"boolean","default":False,"description":"The cashier chose no receipt: the printer is not required."},
  "inject":{"type":"array","items":{"type":"string"},"description":"Simulated lane only: faults as STEP:FAULT (e.g. after-approve:card-removed), as posctl --inject."},
  "wait":{"type":"integer","minimum":0,"maximum":300,"description":"Seconds to wait for the outcome before answering (0: answer 202 at once). More than 300 is refused (400)."}}}
S["HealthSummary"]={"type":"object","required":["outcome","problems","checked_ms"],"additionalProperties":False,"properties":{"outcome":{"type":"string","enum":["skipped","pass","warn","fail"]},"problems":{"type":"array","items":{"type":"string"}},"checked_ms":{"type":"integer"}}}
S["DeviceStatus"]={"type":"object","required":["uri","state","fault","detail","info","since_ms","checked_ms","health","reopen_attempts"],"additionalProperties":False,"properties":DEV_PROPS}
S["Devices"]={"type":"object","required":["reader","printer","msr"],"additionalProperties":False,"properties":{"reader":ref("DeviceStatus"),"printer":ref("DeviceStatus"),"msr":ref("DeviceStatus")}}
S["Status"]={"type":"object","additionalProperties":False,"required":["terminal_id","simulated","version","busy","current","shutting_down","settling","devices","reversals_pending","reversals_stuck","receipts_owed","cardholder","last_event"],"properties":{
  "terminal_id":{"type":"string"},"simulated":{"type":"boolean"},"version":{"type":"string"},"busy":{"type":"boolean"},
  "current":{"oneOf":[{"type":"null"},{"type":"object","required":["id","operation","state"],"additionalProperties":False,"properties":{"id":nul("integer"),"operation":{"type":"string"},"state":nul("string")}}]},
  "shutting_down":{"type":"boolean"},"settling":{"type":"boolean","description":"A settlement with the host is running: sales are refused (409 busy) until it ends."},"devices":ref("Devices"),"reversals_pending":{"type":"integer"},"reversals_stuck":{"type":"integer"},"receipts_owed":{"type":"integer"},
  "cardholder":{"type":"string","enum":["auto","manual"],"description":"Simulated lane: whether the simulated cardholder inserts/swipes when asked."},
  "last_event":{"type":"integer","description":"Sequence number of the latest event (for GET /v1/events?since=)."}}}
S["Health"]={"type":"object","required":["ok","shutting_down","sales_blocked"],"additionalProperties":False,"properties":{"ok":{"type":"boolean","description":"False while stopping, when the lane worker failed, or while sales are blocked."},"shutting_down":{"type":"boolean"},"sales_blocked":{**nul("string"),"description":"Why the lane takes no sales (its journal cannot be written: full disk, I/O error, removed or replaced), and what happened to the sale in flight; null while it takes them."}}}
S["Cancel"]={"type":"object","required":["id","cancel","message"],"additionalProperties":False,"properties":{"id":{"type":"integer"},"cancel":{"type":"string","enum":["requested"]},"message":{"type":"string"}}}
S["Reversals"]={"type":"object","required":["pending","stuck"],"additionalProperties":False,"properties":{"pending":{"type":"array","items":ref("Transaction")},"stuck":{"type":"array","items":ref("Transaction")}}}
S["DrainReport"]={"type":"object","required":["reversed","rejected","unanswered","stuck","waiting"],"additionalProperties":False,"properties":{k:{"type":"array","items":{"type":"integer"}} for k in ["reversed","rejected","unanswered","stuck","waiting"]}}
S["Owed"]={"type":"object","required":["owed"],"additionalProperties":False,"properties":{"owed":{"type":"array","items":ref("Transaction")}}}
S["Printed"]={"type":"object","required":["printed"],"additionalProperties":False,"properties":{"printed":{"type":"array","items":{"type":"integer"}}}}
S["PrinterConditions"]={"type":"object","required":["conditions"],"additionalProperties":False,"properties":{"conditions":{"type":"array","items":{"type":"string"}}}}
S["CountAmount"]={"type":"object","required":["count","amount"],"additionalProperties":False,"properties":{"count":{"type":"integer"},"amount":{"type":"integer","description":"Minor units."}}}
S["CurrencyTotals"]={"type":"object","description":"The terminal's totals of a batch in one currency, as sent in the 0500.","required":["currency","debits","credits","debit_reversals","credit_reversals","voids"],"additionalProperties":False,"properties":{"currency":{"type":"integer","description":"ISO 4217 numeric."},**{k:ref("CountAmount") for k in ["debits","credits","debit_reversals","credit_reversals","voids"]}}}
SETTLEMENT_STATE={"type":"string","enum":["started","requested","uploading","closing","balanced","closed_with_differences"]}
S["SettlementRecord"]={"type":"object","description":"A settlement as journaled.","required":["id","batch","state","forced","totals","stan","transmission_time","response_code","receipt","created_ms","updated_ms"],"additionalProperties":False,"properties":{
  "id":{"type":"integer"},"batch":{"type":"integer"},"state":SETTLEMENT_STATE,"forced":{"type":"boolean"},"totals":{"type":"array","items":ref("CurrencyTotals")},
  "stan":nul("integer"),"transmission_time":nul("string"),"response_code":nul("string"),"receipt":nul("string"),"created_ms":{"type":"integer"},"updated_ms":{"type":"integer"}}}
S["Difference"]={"type":"object","description":"A difference between the terminal and the host, found by a settlement (posctl report shows it as [kind] txn N: detail -> action).","required":["seq","settlement_id","batch","txn_id","kind","detail","action","at_ms"],"additionalProperties":False,"properties":{
  "seq":{"type":"integer"},"settlement_id":{"type":"integer"},"batch":{"type":"integer"},"txn_id":nul("integer"),
  "kind":{"type":"string","description":"host_charged_terminal_reversed, host_charged_terminal_voided, terminal_charged_host_no_record, amount_mismatch, host_only, known_stuck_reversal, upload_refused."},
  "detail":{"type":"string","description":"What differs, in plain words: amounts, STAN, RRN, masked card."},"action":{"type":"string","description":"What was done (e.g. reversal re-sent) or what to do (call the acquirer)."},"at_ms":{"type":"integer"}}}
S["OpenPreauth"]={"type":"object","required":["id","amount","pan_masked","batch","age_days","expires","expired"],"additionalProperties":False,"properties":{
  "id":{"type":"integer"},"amount":{"type":"integer"},"pan_masked":nul("string"),"batch":nul("integer"),"age_days":{"type":"integer"},"expires":{"type":"string"},"expired":{"type":"boolean"}}}
S["BatchReport"]={"type":"object","description":"The batch picture (as posctl report): the open batch, an unfinished settlement (POST /v1/settlement resumes it), the last settlement and its differences, pre-authorizations still open with age and expiry.","required":["open_batch","last_settlement","unfinished_settlement","differences","open_preauths"],"additionalProperties":False,"properties":{
  "open_batch":{"type":"integer"},"last_settlement":{"oneOf":[{"type":"null"},ref("SettlementRecord")]},"unfinished_settlement":{"oneOf":[{"type":"null"},ref("SettlementRecord")]},
  "differences":{"type":"array","items":ref("Difference")},"open_preauths":{"type":"array","items":ref("OpenPreauth")}}}
S["Report"]={"type":"object","description":"End-of-day totals and the batch picture (posctl report --json has the same shape).","required":["since_ms","batch"],"properties":{"since_ms":{"type":"integer"},"batch":ref("BatchReport")}}
S["RequeueRequest"]={"type":"object","additionalProperties":False,"required":["note"],"properties":{"note":{"type":"string","minLength":1,"maxLength":200,"description":"Why the reversal may go again (the acquirer's answer); journaled. No control characters, no run of 13 or more digits (no card numbers)."}}}
S["ResolveRequest"]={"type":"object","additionalProperties":False,"required":["reference"],"properties":{"reference":{"type":"string","minLength":1,"maxLength":64,"description":"The acquirer's reference for the reversal it made on its side; journaled. No control characters, no run of 13 or more digits."}}}
S["SettleRequest"]={"type":"object","additionalProperties":False,"properties":{"force":{"type":"boolean","default":False,"description":"Settle past reversals the host keeps rejecting (stuck); each is listed as a known difference."}}}
S["SettlementResult"]={"type":"object","description":"What the settlement came to (posctl settle --json, plus balanced and evidence).","required":["id","batch","state","balanced","resumed","forced","totals","differences","receipt","reversals","evidence"],"additionalProperties":False,"properties":{
  "id":{"type":"integer"},"batch":{"type":"integer","description":"The batch closed (the next one is open)."},"state":SETTLEMENT_STATE,
  "balanced":{"type":"boolean","description":"The host agreed with the terminal's totals (no differences)."},
  "resumed":{"type":"boolean","description":"This call finished a settlement a crash or an outage had stopped."},"forced":{"type":"boolean"},
  "totals":{"type":"array","items":ref("CurrencyTotals")},"differences":{"type":"array","items":ref("Difference")},"receipt":nul("string"),
  "reversals":ref("DrainReport"),"evidence":{"type":"string","description":"The command that exports the settlement's evidence."}}}
S["Evidence"]={"type":"object","description":"One document for a dispute or the acquirer: the transaction (masked), its timeline, events, host messages with timings and reversal attempts.","required":["summary","transaction","timeline","events","host_messages"]}
S["Event"]={"type":"object","required":["seq","time_ms","type","detail"],"additionalProperties":False,"properties":{
  "seq":{"type":"integer"},"time_ms":{"type":"integer"},
  "type":{"type":"string","enum":["transaction_state","prompt","transaction_fault","card_inserted","card_removed","paper_low","paper_out","cover_open","cutter_jam","printer_offline","printer_ready","device_unplugged","device_reconnected","device_fault","health_check","reversal_stuck","receipt_printed","shutting_down","sales_blocked","sales_resumed","settlement","settlement_difference"]},
  "device":{"type":"string","enum":["reader","printer","msr"]},"txn":{"type":"integer"},"state":ref("State"),"fault":{"type":"string","description":"pos_hal FaultKind name."},"settlement":{"type":"integer","description":"settlement, settlement_difference: the settlement's id (posctl journal settlement ID)."},"detail":{"type":"string"}}}
S["SimRequest"]={"type":"object","additionalProperties":False,"properties":{
  "profile":{"type":"string","description":"insert-card, swipe: the card profile (default: the lane's)."},
  "fault":{"type":"string","enum":["paper-out","cover-open","cutter-jam","printer-offline"],"description":"printer-fault."},
  "on":{"type":"boolean","description":"paper-near-end, host-down, drawer (open or close the virtual cash drawer; default true)."},
  "mode":{"type":"string","enum":["auto","manual"],"description":"cardholder."}}}
S["SimDone"]={"type":"object","required":["done"],"additionalProperties":False,"properties":{"done":{"type":"string"}}}
S["Drawer"]={"type":"object","required":["state","pulse","require_closed_before_sale"],"additionalProperties":False,"properties":{
  "state":{"type":"string","enum":["open","closed","unknown"]},"opened":{"type":"boolean"},
  "pulse":{"type":"object","required":["pin","on","off"],"additionalProperties":False,"properties":{"pin":{"type":"string","enum":["pin2","pin5"]},"on":{"type":"integer"},"off":{"type":"integer"}}},
  "require_closed_before_sale":{"type":"boolean"}}}
P = doc["paths"]
def op(path, method, d):
    P.setdefault(path, {})[method] = d
op("/healthz","get",{"operationId":"health","summary":"Liveness (no token; also on the metrics listener).","security":[],"responses":ok("Alive.",ref("Health"))})
op("/metrics","get",{"operationId":"metrics","summary":"Prometheus metrics, OpenMetrics text (no token; also on the metrics listener).","security":[],"responses":{"200":{"description":"pos_device_up, pos_device_faults_total, pos_transactions_total, pos_reversals_pending, pos_reversals_stuck, pos_receipts_owed, pos_printer_condition, pos_card_present, pos_busy, pos_device_reconnects_total, pos_apdu_duration_seconds, pos_print_duration_seconds, pos_transaction_duration_seconds.","content":{"application/openmetrics-text":{"schema":{"type":"string"}}}}}})
op("/openapi.json","get",{"operationId":"openapi","summary":"This document.","security":[],"responses":{"200":{"description":"OpenAPI 3.1","content":{"application/json":{"schema":{"type":"object"}}}}}})
op("/v1/status","get",{"operationId":"status","summary":"The lane at a glance: busy, devices, reversals, receipts owed.","responses":{**ok("Status.",ref("Status")),**auth_errors}})
op("/v1/devices","get",{"operationId":"devices","summary":"Device status as last seen by the supervisor (polled every supervision.poll_ms while idle).","responses":{**ok("Devices.",ref("Devices")),**auth_errors}})
op("/v1/devices/check","post",{"operationId":"checkDevices","summary":"Look at every device and run the health checks now (queued behind a running transaction).","responses":{**ok("Devices after the check.",ref("Devices")),**auth_errors,"504":err_resp("Did not finish in time.")}})
op("/v1/devices/printer/recover","post",{"operationId":"recoverPrinter","summary":"Run the printer's recovery sequence (after a jam was cleared or the cover closed).","responses":{**ok("Conditions after recovery.",ref("PrinterConditions")),**auth_errors,"404":err_resp("No printer open."),"409":err_resp("A transaction is running."),"502":err_resp("The printer failed.")}})
op("/v1/drawer","get",{"operationId":"drawerStatus","summary":"The cash drawer's switch (asked of the printer it hangs on, DLE EOT 1; the printer profile says which level means open).",
  "responses":{**ok("The switch: open, closed, or unknown (the printer does not report it).",ref("Drawer")),**auth_errors,"404":err_resp("The lane has no cash drawer ([devices] drawer = \"printer\")."),"502":err_resp("The printer did not answer or is gone; the message names the fault kind (printer_offline, disconnected, ...).")}})
op("/v1/drawer/open","post",{"operationId":"openDrawer","summary":"Pulse the cash drawer (ESC p on the configured pin, 50 ms on, 500 ms off) and read its switch after; journaled as a lane event (kind drawer). Refused, with no pulse, while the printer is offline, its cover open or out of paper.",
  "responses":{**ok("The pulse went out; opened says whether the switch reads open after it (false: jammed, locked, wrong pin, or not reported).",ref("Drawer")),**auth_errors,"404":err_resp("The lane has no cash drawer ([devices] drawer = \"printer\")."),"409":err_resp("A transaction is running."),"502":err_resp("Not pulsed: the printer cannot act now (cover_open, paper_out, printer_offline) or does not answer; the message names the fault kind.")}})
op("/v1/transactions","post",{"operationId":"startTransaction","summary":"Start a sale, pre-auth, completion, void or refund.","requestBody":{"required":True,"content":{"application/json":{"schema":ref("StartRequest")}}},
  "responses":{**ok("With wait: the transaction when done (or when the wait ran out; see done).",ref("Transaction")),**ok("Started: the transaction as created. Follow it with GET /v1/transactions/{id}?wait=N or the event stream.",ref("Transaction"),"202"),
   "400":err_resp("The request cannot be run (amount, operation, original, injection)."),**auth_errors,"404":err_resp("inject on a lane with real devices (not_simulated)."),"409":err_resp("busy: another transaction is in progress (error.current is its id)."),"503":err_resp("shutting_down: the service is stopping; sales_blocked: the journal cannot be written (the message says why; the lane resumes by itself when it can)."),"504":err_resp("The lane did not start it in time.")}})
op("/v1/transactions","get",{"operationId":"listTransactions","summary":"Recent transactions, newest first.","parameters":[{"name":"limit","in":"query","schema":{"type":"integer","default":50,"maximum":1000}},{"name":"state","in":"query","schema":ref("State")}],"responses":{**ok("Transactions.",ref("TransactionList")),"400":err_resp("Bad parameter."),**auth_errors}})
op("/v1/transactions/{id}","get",{"operationId":"getTransaction","summary":"One transaction; with wait, long-poll until it is done.","parameters":[id_param,{"name":"wait","in":"query","schema":{"type":"integer","minimum":0,"maximum":300},"description":"Seconds to wait for done."}],"responses":{**ok("The transaction.",ref("Transaction")),"400":err_resp("Bad id."),**auth_errors,"404":err_resp("No such transaction.")}})
op("/v1/transactions/{id}/evidence","get",{"operationId":"evidence","summary":"Everything recorded about one transaction, for a dispute or the acquirer.","parameters":[id_param],"responses":{**ok("Evidence.",ref("Evidence")),**auth_errors,"404":err_resp("No such transaction.")}})
op("/v1/transactions/{id}/cancel","post",{"operationId":"cancelTransaction","summary":"Cancel the running transaction while nothing has been sent to the host (waiting for the card, reading it). It then ends aborted.","parameters":[id_param],"responses":{**ok("Cancel requested; await the transaction for its outcome.",ref("Cancel"),"202"),**auth_errors,"404":err_resp("No such transaction."),"409":err_resp("too_late: the request may be with the host (it runs to its end: void or refund it), or the transaction already ended.")}})
op("/v1/reversals","get",{"operationId":"reversals","summary":"Reversals pending (retried with backoff) and stuck (the host keeps rejecting: call the acquirer).","responses":{**ok("Reversals.",ref("Reversals")),**auth_errors}})
op("/v1/reversals/retry","post",{"operationId":"retryReversals","summary":"Send pending reversals now, whatever their backoff.","responses":{**ok("What the retry did.",ref("DrainReport")),**auth_errors,"409":err_resp("A transaction is running."),"504":err_resp("Did not finish in time.")}})
op("/v1/reversals/{id}/requeue","post",{"operationId":"requeueStuckReversal","summary":"An operator sends a stuck reversal again after calling the acquirer: it goes back to reversal_pending, due now, its rejections counted from zero (the next retry sends it). Journaled with the note (an operator event).","parameters":[id_param],"requestBody":{"required":True,"content":{"application/json":{"schema":ref("RequeueRequest")}}},"responses":{**ok("The transaction, now reversal_pending.",ref("Transaction")),**auth_errors,"404":err_resp("No such transaction."),"409":err_resp("not_stuck: the transaction is not a stuck reversal; busy: a transaction is running.")}})
op("/v1/reversals/{id}/resolve","post",{"operationId":"resolveStuckReversal","summary":"An operator records that the acquirer reversed a stuck reversal on its side: it ends reversed with the acquirer's reference; nothing is sent to the host. Journaled (an operator event).","parameters":[id_param],"requestBody":{"required":True,"content":{"application/json":{"schema":ref("ResolveRequest")}}},"responses":{**ok("The transaction, now reversed.",ref("Transaction")),**auth_errors,"404":err_resp("No such transaction."),"409":err_resp("not_stuck: the transaction is not a stuck reversal; busy: a transaction is running.")}})
op("/v1/receipts/owed","get",{"operationId":"owedReceipts","summary":"Approved transactions whose receipt was not printed.","responses":{**ok("Owed receipts.",ref("Owed")),**auth_errors}})
op("/v1/receipts/reprint","post",{"operationId":"reprintOwed","summary":"Print owed receipts now (marked DUPLICATE). The service also does this by itself when the printer is ready.","responses":{**ok("Printed ids.",ref("Printed")),**auth_errors,"409":err_resp("A transaction is running.")}})
op("/v1/report","get",{"operationId":"report","summary":"End-of-day report: totals by operation and outcome since since_ms (default: midnight UTC today).","parameters":[{"name":"since_ms","in":"query","schema":{"type":"integer"}}],"responses":{**ok("Report.",ref("Report")),**auth_errors}})
op("/v1/settlement","post",{"operationId":"settle","summary":"Settle the open batch with the host (end of day), or resume a settlement a crash or an outage stopped: pending reversals first, the totals in a 0500; out of balance, each transaction uploaded (0320) and every difference named (journaled, in GET /v1/report, a settlement_difference event). Sales are refused (409 busy) while it runs; the outcome is also a settlement event.","requestBody":{"required":False,"content":{"application/json":{"schema":ref("SettleRequest")}}},
  "responses":{**ok("Closed: balanced, or closed with the differences listed.",ref("SettlementResult")),**auth_errors,"409":err_resp("busy: a transaction runs (a settlement never starts while a sale runs) or a settlement is already running; settlement_refused: it could not start and nothing changed (a pending reversal the host did not take, a stuck one without force, a transaction in flight)."),"502":err_resp("settlement_unfinished: it started and could not finish now (no answer, a refusal): the batch stays frozen and the next POST /v1/settlement resumes it."),"503":err_resp("shutting_down, or sales_blocked (the journal cannot be written)."),"504":err_resp("Did not end within 600 s: it goes on; the settlement event and GET /v1/report show its end.")}})
op("/v1/events","get",{"operationId":"events","summary":"Live events as server-sent events (text/event-stream; event: TYPE, id: SEQ, data: an Event as JSON). Reconnect with Last-Event-ID or ?since=SEQ to get what was missed (the last 1024 are kept). Each stream has a queue of 256 events: a client that falls further behind gets a last block `event: missed` whose data is {\"type\":\"missed\",\"last_delivered\":SEQ,\"detail\":...} and the stream ends (reconnect with ?since=SEQ); one that takes no event for 10 s is disconnected. 503 overloaded when max_connections streams are open.","parameters":[{"name":"since","in":"query","schema":{"type":"integer"}},{"name":"Last-Event-ID","in":"header","schema":{"type":"integer"}}],"responses":{"200":{"description":"The stream; each data line is an Event.","content":{"text/event-stream":{"schema":ref("Event")}}},**auth_errors}})
op("/v1/sim/{action}","post",{"operationId":"simulator","summary":"Simulated lane only: act on the virtual devices (for demos, tests and integrators without hardware).","parameters":[{"name":"action","in":"path","required":True,"schema":{"type":"string","enum":["insert-card","remove-card","mute-card","swipe","unplug-reader","replug-reader","unplug-printer","replug-printer","printer-fault","paper-near-end","drawer","clear-printer","cardholder","host-down"]}}],
  "requestBody":{"required":False,"content":{"application/json":{"schema":ref("SimRequest")}}},"responses":{**ok("Done.",ref("SimDone")),"400":err_resp("Bad body."),**auth_errors,"404":err_resp("not_simulated, or no such action."),"409":err_resp("The virtual device refused (e.g. not unplugged).")}})
for path, ops in P.items():
    for m, o in ops.items():
        if path not in ("/healthz", "/metrics", "/openapi.json"):
            o["responses"].setdefault("400", err_resp("A parameter or the body cannot be used."))
        o["responses"]["default"] = err_resp("Any other error, with its kind: 500 journal or internal, 503 shutting_down (stopping, or the lane worker failed) or overloaded (too many requests at once; with Retry-After), 405 method_not_allowed, 404 no_route; from the HTTP limits: 408 request_timeout (head or body not sent within 10 s), 414/431 too_large (request line or head over 16 KiB, or more than 64 header fields). 503 sales_blocked (the lane's journal cannot be written; the message says why and where the transaction stopped).")
print(json.dumps(doc, indent=2))
