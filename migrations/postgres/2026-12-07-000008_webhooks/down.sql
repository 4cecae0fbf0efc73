DROP TABLE webhook_deliveries;
DROP TABLE webhook_endpoints;
DELETE FROM event_marks WHERE name = 'webhooks';
