package tablecheck

import "github.com/sandbox-broker/broker/pkg/api"

// Unexercised lists, for each function, each action its role grants that no call of its
// events/ sample makes, with why it is granted anyway; "*" applies to every function.
// infra's template run sends each sample to the real bootstrap and fails on a granted
// action that is neither called nor listed here. The DynamoDB entries are the price of
// granting pool.ReadActions and pool.WriteActions as sets (api.Route.Table): each says
// which path of the function uses the action, or that none does. Every function with
// table access has an entry, empty when its sample calls every action granted
// (TestRoutesAndJobs names a missing one).
var Unexercised = map[string]map[string]string{
	"*": {
		"logs:CreateLogStream":     "the Lambda service writes the function's log with the role; the code never calls CloudWatch Logs",
		"logs:PutLogEvents":        "the Lambda service writes the function's log with the role; the code never calls CloudWatch Logs",
		"xray:PutTraceSegments":    "active tracing: the Lambda service sends the trace segments with the role",
		"xray:PutTelemetryRecords": "active tracing: the Lambda service sends the trace segments with the role",
	},
	"readyz":                  {},
	"admin-get-sandbox":       {},
	"get-sandbox":             {"dynamodb:Query": readSet},
	"admin-sync":              {"dynamodb:Query": readSet},
	"admin-cleanup":           {"dynamodb:Query": readSet},
	"admin-list-sandboxes":    {"dynamodb:GetItem": readSet},
	"admin-job-runs":          {"dynamodb:GetItem": readSet},
	"admin-stats":             {"dynamodb:GetItem": readSet},
	"metrics":                 {"dynamodb:GetItem": readSet},
	"allocate":                {"dynamodb:GetItem": writeSet, "dynamodb:DeleteItem": writeSet, "dynamodb:ConditionCheckItem": writeSet},
	"mark-for-deletion":       {"dynamodb:Query": writeSet, "dynamodb:ConditionCheckItem": writeSet},
	"admin-retry-deletion":    {"dynamodb:Query": writeSet, "dynamodb:DeleteItem": writeSet, "dynamodb:ConditionCheckItem": writeSet},
	"admin-bulk-delete":       {"dynamodb:GetItem": writeSet, "dynamodb:DeleteItem": writeSet, "dynamodb:ConditionCheckItem": writeSet},
	"admin-auto-delete-stale": {"dynamodb:GetItem": writeSet, "dynamodb:DeleteItem": writeSet, "dynamodb:ConditionCheckItem": writeSet},
	"sync":                    {"dynamodb:GetItem": writeSet, "dynamodb:UpdateItem": noDueWork},
	"cleanup":                 {"dynamodb:GetItem": writeSet, "dynamodb:UpdateItem": noDueWork, "dynamodb:ConditionCheckItem": writeSet},
	"expiry":                  {"dynamodb:GetItem": writeSet, "dynamodb:UpdateItem": noDueWork, "dynamodb:ConditionCheckItem": writeSet},
	"stale-cleanup":           {"dynamodb:GetItem": writeSet, "dynamodb:UpdateItem": noDueWork, "dynamodb:ConditionCheckItem": writeSet},
	"pool-metrics":            {"dynamodb:GetItem": writeSet, "dynamodb:UpdateItem": writeSet, "dynamodb:ConditionCheckItem": writeSet},
	"usage-plans":             {"dynamodb:GetItem": writeSet, "dynamodb:UpdateItem": writeSet, "dynamodb:Query": writeSet, "dynamodb:ConditionCheckItem": writeSet},
	"extend":                  {"dynamodb:Query": writeSet, "dynamodb:DeleteItem": writeSet, "dynamodb:ConditionCheckItem": writeSet},
	"admin-drain-state":       {"dynamodb:GetItem": readSet},
	"admin-drain":             {"dynamodb:GetItem": writeSet, "dynamodb:Query": writeSet, "dynamodb:UpdateItem": writeSet, "dynamodb:DeleteItem": writeSet, "dynamodb:ConditionCheckItem": writeSet},
	"admin-undrain": {"dynamodb:GetItem": writeSet, "dynamodb:PutItem": noDrain, "dynamodb:UpdateItem": noDrain,
		"dynamodb:DeleteItem": noDrain, "dynamodb:ConditionCheckItem": writeSet},
	api.EventConsumerFunction: {
		"sqs:SendMessage":           "the function dead-letters what the bus refuses, and the event source mapping sends its on-failure records with this role; the sample's events are all taken",
		"dynamodb:DescribeStream":   byTheMapping,
		"dynamodb:GetShardIterator": byTheMapping,
		"dynamodb:GetRecords":       byTheMapping,
		"dynamodb:ListStreams":      byTheMapping,
	},
	"admin-replay-events": {
		"dynamodb:GetShardIterator": noFailedBatch,
		"dynamodb:GetRecords":       noFailedBatch,
	},
	"reservations":             {"dynamodb:ConditionCheckItem": writeSet, "dynamodb:GetItem": writeSet, "dynamodb:UpdateItem": noDueWork},
	"admin-list-profiles":      {"dynamodb:GetItem": readSet},
	"admin-put-profile":        {"dynamodb:ConditionCheckItem": writeSet, "dynamodb:DeleteItem": writeSet, "dynamodb:GetItem": writeSet, "dynamodb:Query": writeSet, "dynamodb:UpdateItem": writeSet},
	"admin-delete-profile":     {"dynamodb:ConditionCheckItem": writeSet, "dynamodb:GetItem": writeSet, "dynamodb:PutItem": writeSet, "dynamodb:Query": writeSet, "dynamodb:UpdateItem": writeSet},
	"admin-list-reservations":  {"dynamodb:GetItem": readSet},
	"admin-create-reservation": {"dynamodb:ConditionCheckItem": writeSet, "dynamodb:DeleteItem": writeSet, "dynamodb:GetItem": writeSet, "dynamodb:UpdateItem": writeSet},
	"admin-cancel-reservation": {"dynamodb:ConditionCheckItem": writeSet, "dynamodb:DeleteItem": writeSet, "dynamodb:PutItem": writeSet, "dynamodb:Query": writeSet, "dynamodb:UpdateItem": noReservation},
	"admin-capacity":           {"dynamodb:GetItem": readSet},
}

const (
	readSet       = "pool.ReadActions is granted as one set (GetItem and Query) to every reading route; this route needs only the other one"
	writeSet      = "pool.WriteActions is granted as one set to every writer; no path of this function the sample takes needs it, and the set is not split per function"
	noDueWork     = "used when the job has due work of its kind (a transition updates the sandbox); the sample's table has none for it"
	noDrain       = "used to end a drain in force (the drain item goes, its history entry is put); the sample's table has none"
	noReservation = "used to cancel a reservation that exists (its state changes); the sample's table has none, so the route answers 404"
	// The stream's consumer is handed its batches by the event source mapping, which
	// reads the stream with the function's role.
	byTheMapping  = "Lambda's event source mapping reads the table's stream with the function's role and hands it the batches"
	noFailedBatch = "used to read back a batch the event source mapping gave up on; the sample's queue holds an event's letter"
)
