#!/usr/bin/env bash
# GENERATED from flexledger/kafka_access.py by `flexledger kafka acls script`: do not edit (a unit test
# keeps it current). The compose stack's Kafka principals (SCRAM-SHA-512 users, each password from
# FLEXLEDGER_KAFKA_PASSWORD_<NAME>) and the access table's ACLs, added as `admin` by the one-shot
# `kafka-access` job (apache/kafka image) at every `docker compose up`: idempotent, and a changed password
# is the rotation. It only adds: an ACL taken out of the table stays until removed with kafka-acls.sh.
set -euo pipefail
: "${FLEXLEDGER_KAFKA_ADMIN_PASSWORD:?set FLEXLEDGER_KAFKA_ADMIN_PASSWORD}"
bootstrap=${KAFKA_BOOTSTRAP:-kafka-1:9092,kafka-2:9092,kafka-3:9092}
bin=${KAFKA_BIN:-/opt/kafka/bin}
umask 077
admin=$(mktemp)
scram=$(mktemp)
trap 'rm -f "$admin" "$scram"' EXIT
plain=org.apache.kafka.common.security.plain.PlainLoginModule
cat > "$admin" <<PROPERTIES
security.protocol=SASL_SSL
sasl.mechanism=PLAIN
sasl.jaas.config=$plain required username="admin" password="$FLEXLEDGER_KAFKA_ADMIN_PASSWORD";
ssl.truststore.type=PEM
ssl.truststore.location=${KAFKA_CA_FILE:-/pki/ca/ca.crt}
PROPERTIES

user() {  # NAME PASSWORD: create or update NAME's SCRAM credential (the password never on a command line)
  printf 'SCRAM-SHA-512=iterations=8192,password=%s\n' "$2" > "$scram"
  "$bin/kafka-configs.sh" --bootstrap-server "$bootstrap" --command-config "$admin" \
    --alter --entity-type users --entity-name "$1" --add-config-file "$scram"
}

acl() {  # AclCommand --add arguments
  "$bin/kafka-acls.sh" --bootstrap-server "$bootstrap" --command-config "$admin" --add "$@" >/dev/null
}

user intake "${FLEXLEDGER_KAFKA_PASSWORD_INTAKE:?set FLEXLEDGER_KAFKA_PASSWORD_INTAKE}"
user eligibility "${FLEXLEDGER_KAFKA_PASSWORD_ELIGIBILITY:?set FLEXLEDGER_KAFKA_PASSWORD_ELIGIBILITY}"
user payments "${FLEXLEDGER_KAFKA_PASSWORD_PAYMENTS:?set FLEXLEDGER_KAFKA_PASSWORD_PAYMENTS}"
user hr_bureau "${FLEXLEDGER_KAFKA_PASSWORD_HR_BUREAU:?set FLEXLEDGER_KAFKA_PASSWORD_HR_BUREAU}"
user social_insurance_agency "${FLEXLEDGER_KAFKA_PASSWORD_SOCIAL_INSURANCE_AGENCY:?set FLEXLEDGER_KAFKA_PASSWORD_SOCIAL_INSURANCE_AGENCY}"
user talent_office "${FLEXLEDGER_KAFKA_PASSWORD_TALENT_OFFICE:?set FLEXLEDGER_KAFKA_PASSWORD_TALENT_OFFICE}"
user park_authority "${FLEXLEDGER_KAFKA_PASSWORD_PARK_AUTHORITY:?set FLEXLEDGER_KAFKA_PASSWORD_PARK_AUTHORITY}"
user finance "${FLEXLEDGER_KAFKA_PASSWORD_FINANCE:?set FLEXLEDGER_KAFKA_PASSWORD_FINANCE}"
user statistics "${FLEXLEDGER_KAFKA_PASSWORD_STATISTICS:?set FLEXLEDGER_KAFKA_PASSWORD_STATISTICS}"
user tax "${FLEXLEDGER_KAFKA_PASSWORD_TAX:?set FLEXLEDGER_KAFKA_PASSWORD_TAX}"
user auditor "${FLEXLEDGER_KAFKA_PASSWORD_AUDITOR:?set FLEXLEDGER_KAFKA_PASSWORD_AUDITOR}"

acl --allow-principal User:auditor --allow-host '*' --resource-pattern-type literal --operation READ --topic flexledger.audit.checkpoints.v1
acl --allow-principal User:auditor --allow-host '*' --resource-pattern-type prefixed --operation READ --group auditor.
acl --allow-principal User:eligibility --allow-host '*' --resource-pattern-type literal --operation READ --group eligibility --topic flexledger.intake.facts.v1 --topic sandbox.flexledger.intake.facts.v1
acl --allow-principal User:eligibility --allow-host '*' --resource-pattern-type literal --operation WRITE --topic flexledger.audit.checkpoints.v1 --topic flexledger.eligibility.dead-letters.v1 --topic flexledger.eligibility.decisions.v1 --topic flexledger.eligibility.statistics.v1 --topic sandbox.flexledger.eligibility.decisions.v1 --topic sandbox.flexledger.eligibility.statistics.v1
acl --allow-principal User:finance --allow-host '*' --resource-pattern-type literal --operation READ --topic flexledger.payments.disbursements.v1 --topic flexledger.payments.order-events.v1 --topic flexledger.payments.orders.v1
acl --allow-principal User:finance --allow-host '*' --resource-pattern-type literal --operation WRITE --topic flexledger.payments.settlements.v1
acl --allow-principal User:finance --allow-host '*' --resource-pattern-type prefixed --operation READ --group finance.
acl --allow-principal User:hr_bureau --allow-host '*' --resource-pattern-type literal --operation WRITE --topic flexledger.intake.agency-facts.v1.hr_bureau
acl --allow-principal User:intake --allow-host '*' --resource-pattern-type literal --operation READ --group intake --topic flexledger.intake.agency-facts.v1.hr_bureau --topic flexledger.intake.agency-facts.v1.park_authority --topic flexledger.intake.agency-facts.v1.social_insurance_agency --topic flexledger.intake.agency-facts.v1.talent_office
acl --allow-principal User:intake --allow-host '*' --resource-pattern-type literal --operation WRITE --topic flexledger.intake.dead-letters.v1 --topic flexledger.intake.facts.v1 --topic sandbox.flexledger.intake.facts.v1
acl --allow-principal User:park_authority --allow-host '*' --resource-pattern-type literal --operation WRITE --topic flexledger.intake.agency-facts.v1.park_authority
acl --allow-principal User:payments --allow-host '*' --resource-pattern-type literal --operation READ --group payments --group payments-settlements --topic flexledger.eligibility.decisions.v1 --topic flexledger.payments.settlements.v1 --topic sandbox.flexledger.eligibility.decisions.v1 --topic sandbox.flexledger.payments.settlements.v1
acl --allow-principal User:payments --allow-host '*' --resource-pattern-type literal --operation WRITE --topic flexledger.payments.dead-letters.v1 --topic flexledger.payments.disbursements.v1 --topic flexledger.payments.order-events.v1 --topic flexledger.payments.orders.v1 --topic sandbox.flexledger.payments.disbursements.v1 --topic sandbox.flexledger.payments.order-events.v1 --topic sandbox.flexledger.payments.orders.v1
acl --allow-principal User:social_insurance_agency --allow-host '*' --resource-pattern-type literal --operation WRITE --topic flexledger.intake.agency-facts.v1.social_insurance_agency
acl --allow-principal User:statistics --allow-host '*' --resource-pattern-type literal --operation READ --topic flexledger.eligibility.statistics.v1
acl --allow-principal User:statistics --allow-host '*' --resource-pattern-type prefixed --operation READ --group statistics.
acl --allow-principal User:talent_office --allow-host '*' --resource-pattern-type literal --operation WRITE --topic flexledger.intake.agency-facts.v1.talent_office
acl --allow-principal User:tax --allow-host '*' --resource-pattern-type literal --operation READ --topic flexledger.eligibility.decisions.v1
acl --allow-principal User:tax --allow-host '*' --resource-pattern-type prefixed --operation READ --group tax.
echo "kafka-access: users and ACLs of the access table applied"
