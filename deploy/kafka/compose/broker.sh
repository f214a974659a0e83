#!/usr/bin/env bash
# A compose broker's entry point (apache/kafka image; node NODE_ID of three, host port HOST_PORT):
# server.properties with the node's own lines and admin's PLAIN credential (from
# FLEXLEDGER_KAFKA_ADMIN_PASSWORD) in a private copy, the storage formatted on first start, then the
# broker. It also writes /tmp/admin-client.properties, which the healthcheck logs in with.
set -euo pipefail
: "${CLUSTER_ID:?}" "${NODE_ID:?}" "${HOST_PORT:?}" "${FLEXLEDGER_KAFKA_ADMIN_PASSWORD:?set FLEXLEDGER_KAFKA_ADMIN_PASSWORD}"
case "$FLEXLEDGER_KAFKA_ADMIN_PASSWORD" in *'"'*|*'\'*) echo "admin password: no quotes or backslashes" >&2; exit 1;; esac
umask 077
config=/tmp/server.properties
plain="org.apache.kafka.common.security.plain.PlainLoginModule required username=\"admin\" password=\"$FLEXLEDGER_KAFKA_ADMIN_PASSWORD\""
{
  cat /flexledger/server.properties
  echo "node.id=$NODE_ID"
  echo "advertised.listeners=CLIENT://kafka-$NODE_ID:9092,HOST://localhost:$HOST_PORT"
  echo "listener.name.client.plain.sasl.jaas.config=$plain user_admin=\"$FLEXLEDGER_KAFKA_ADMIN_PASSWORD\";"
  echo "listener.name.controller.plain.sasl.jaas.config=$plain user_admin=\"$FLEXLEDGER_KAFKA_ADMIN_PASSWORD\";"
} > "$config"
{
  echo "security.protocol=SASL_SSL"
  echo "sasl.mechanism=PLAIN"
  echo "sasl.jaas.config=$plain;"
  echo "ssl.truststore.type=PEM"
  echo "ssl.truststore.location=/pki/broker/ca.crt"
} > /tmp/admin-client.properties
/opt/kafka/bin/kafka-storage.sh format --ignore-formatted -t "$CLUSTER_ID" -c "$config"
exec /opt/kafka/bin/kafka-server-start.sh "$config"
