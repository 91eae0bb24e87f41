// The MQTT front door's public surface (DESIGN.md §5), for the daemon's composition root.
export { MqttService, redactUrl, type MqttConfig, type MqttServiceOptions } from './service.js';
export { Topics, isUsableId, isPublishableTopic } from './topics.js';
