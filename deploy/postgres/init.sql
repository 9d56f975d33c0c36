-- One database per shard alias (the directory, `poker`, is POSTGRES_DB). Keep in step with
-- SHARD_URLS in compose.yaml and k8s/config.yaml.
CREATE DATABASE poker_eu_1 OWNER poker;
CREATE DATABASE poker_eu_2 OWNER poker;
