package jobs

// Alarms is every alarm a run can raise (the Alarm* values). Each raised alarm is published
// as the JobAlarm metric with its name as the Alarm dimension (obs.Metrics.PublishRun), and the
// stack makes one CloudWatch alarm per name on it, so an alarm added here pages someone.
var Alarms = []string{AlarmSyncShrinkGuard, AlarmDeletionFailed, AlarmCleanupBreakerOpen, AlarmCSPTokenRejected,
	AlarmCSPWrongEndpoint, AlarmSyncListingRefused, AlarmNIOSXaaSFailed, AlarmUsagePlansFailed, AlarmSyncUUIDConflict, AlarmJobLeaseStuck,
	AlarmReservationUncoverable}
