-- The ndbinfo schema of an NDB 8.x SQL node, rebuilt on MariaDB for the
-- simulator. Sources: ../shared/facts/ndb-and-galera-reference.md part A.1.
--
-- A.1.0: each table is a base table ndbinfo.`ndb$<name>` with columns of
-- three kinds (Number -> INT UNSIGNED, Number64 -> BIGINT UNSIGNED,
-- String -> VARCHAR(512)), CHARACTER SET latin1; what monitors query are
-- views over them (SQL SECURITY INVOKER, DEFINER root@localhost) whose CASE
-- columns are strings and SUM() columns DECIMAL. Real NDB uses
-- ENGINE=NDBINFO; here the base tables are InnoDB, so the syncer replaces
-- all rows in one transaction and a reader never sees half a state.
-- Statements are separated by a semicolon at the end of a line.

DROP DATABASE IF EXISTS ndbinfo;
CREATE DATABASE ndbinfo CHARACTER SET latin1;

-- A.1.1 nodes
CREATE TABLE ndbinfo.`ndb$nodes` (
  node_id INT UNSIGNED, uptime BIGINT UNSIGNED, status INT UNSIGNED,
  start_phase INT UNSIGNED, config_generation INT UNSIGNED
) ENGINE=InnoDB CHARACTER SET latin1;
CREATE DEFINER=`root`@`localhost` SQL SECURITY INVOKER VIEW ndbinfo.nodes AS
SELECT node_id, uptime, CASE status WHEN 0 THEN "NOTHING" WHEN 1 THEN "CMVMI" WHEN 2 THEN "STARTING" WHEN 3 THEN "STARTED" WHEN 4 THEN "SINGLEUSER" WHEN 5 THEN "STOPPING_1" WHEN 6 THEN "STOPPING_2" WHEN 7 THEN "STOPPING_3" WHEN 8 THEN "STOPPING_4" ELSE "<unknown>" END AS status, start_phase, config_generation FROM ndbinfo.`ndb$nodes`;

-- A.1.1 memoryusage (8.x: block 254 CMVMI only, "Data memory" and
-- "Long message buffer"). The pools' base columns beyond those the view
-- reads are not in the facts and are left out.
CREATE TABLE ndbinfo.`ndb$pools` (
  node_id INT UNSIGNED, block_number INT UNSIGNED, block_instance INT UNSIGNED,
  pool_name VARCHAR(512), used BIGINT UNSIGNED, total BIGINT UNSIGNED,
  high BIGINT UNSIGNED, entry_size BIGINT UNSIGNED
) ENGINE=InnoDB CHARACTER SET latin1;
CREATE DEFINER=`root`@`localhost` SQL SECURITY INVOKER VIEW ndbinfo.memoryusage AS
SELECT node_id, pool_name AS memory_type, SUM(used*entry_size) AS used, SUM(used) AS used_pages, SUM(total*entry_size) AS total, SUM(total) AS total_pages FROM ndbinfo.`ndb$pools` WHERE block_number = 254 GROUP BY node_id, memory_type;

-- A.1.1 logspaces (base also has high, not exposed)
CREATE TABLE ndbinfo.`ndb$logspaces` (
  node_id INT UNSIGNED, log_type INT UNSIGNED, log_id INT UNSIGNED, log_part INT UNSIGNED,
  total BIGINT UNSIGNED, used BIGINT UNSIGNED, high BIGINT UNSIGNED
) ENGINE=InnoDB CHARACTER SET latin1;
CREATE DEFINER=`root`@`localhost` SQL SECURITY INVOKER VIEW ndbinfo.logspaces AS
SELECT node_id, CASE log_type WHEN 0 THEN "REDO" WHEN 1 THEN "DD-UNDO" ELSE NULL END AS log_type, log_id, log_part, total, used FROM ndbinfo.`ndb$logspaces`;

-- A.1.1 logbuffers
CREATE TABLE ndbinfo.`ndb$logbuffers` (
  node_id INT UNSIGNED, log_type INT UNSIGNED, log_id INT UNSIGNED, log_part INT UNSIGNED,
  total BIGINT UNSIGNED, used BIGINT UNSIGNED, high BIGINT UNSIGNED
) ENGINE=InnoDB CHARACTER SET latin1;
CREATE DEFINER=`root`@`localhost` SQL SECURITY INVOKER VIEW ndbinfo.logbuffers AS
SELECT node_id, CASE log_type WHEN 0 THEN "REDO" WHEN 1 THEN "DD-UNDO" WHEN 2 THEN "BACKUP-DATA" WHEN 3 THEN "BACKUP-LOG" ELSE "<unknown>" END AS log_type, log_id, log_part, total, used FROM ndbinfo.`ndb$logbuffers`;

-- A.1.0 hard-coded lookup table ndb$blocks, and A.1.1 counters
CREATE TABLE ndbinfo.`ndb$blocks` (
  block_number INT UNSIGNED NOT NULL PRIMARY KEY, block_name VARCHAR(512)
) ENGINE=InnoDB CHARACTER SET latin1;
CREATE TABLE ndbinfo.`ndb$counters` (
  node_id INT UNSIGNED, block_number INT UNSIGNED, block_instance INT UNSIGNED,
  counter_id INT UNSIGNED, val BIGINT UNSIGNED
) ENGINE=InnoDB CHARACTER SET latin1;
CREATE DEFINER=`root`@`localhost` SQL SECURITY INVOKER VIEW ndbinfo.counters AS
SELECT node_id, b.block_name, block_instance, counter_id, CASE counter_id WHEN 1 THEN "ATTRINFO" WHEN 2 THEN "TRANSACTIONS" WHEN 3 THEN "COMMITS" WHEN 4 THEN "READS" WHEN 5 THEN "SIMPLE_READS" WHEN 6 THEN "WRITES" WHEN 7 THEN "ABORTS" WHEN 8 THEN "TABLE_SCANS" WHEN 9 THEN "RANGE_SCANS" WHEN 10 THEN "OPERATIONS" WHEN 11 THEN "READS_RECEIVED" WHEN 12 THEN "LOCAL_READS_SENT" WHEN 13 THEN "REMOTE_READS_SENT" WHEN 14 THEN "READS_NOT_FOUND" WHEN 15 THEN "TABLE_SCANS_RECEIVED" WHEN 16 THEN "LOCAL_TABLE_SCANS_SENT" WHEN 17 THEN "RANGE_SCANS_RECEIVED" WHEN 18 THEN "LOCAL_RANGE_SCANS_SENT" WHEN 19 THEN "REMOTE_RANGE_SCANS_SENT" WHEN 20 THEN "SCAN_BATCHES_RETURNED" WHEN 21 THEN "SCAN_ROWS_RETURNED" WHEN 22 THEN "PRUNED_RANGE_SCANS_RECEIVED" WHEN 23 THEN "CONST_PRUNED_RANGE_SCANS_RECEIVED" WHEN 24 THEN "LOCAL_READS" WHEN 25 THEN "LOCAL_WRITES" WHEN 26 THEN "LQHKEY_OVERLOAD" WHEN 27 THEN "LQHKEY_OVERLOAD_TC" WHEN 28 THEN "LQHKEY_OVERLOAD_READER" WHEN 29 THEN "LQHKEY_OVERLOAD_NODE_PEER" WHEN 30 THEN "LQHKEY_OVERLOAD_SUBSCRIBER" WHEN 31 THEN "LQHSCAN_SLOWDOWNS" ELSE "<unknown>" END AS counter_name, val FROM ndbinfo.`ndb$counters` c LEFT JOIN ndbinfo.`ndb$blocks` b ON c.block_number = b.block_number;

-- A.1.1 transporters (8.3+/8.4 shape, with encrypted)
CREATE TABLE ndbinfo.`ndb$transporters` (
  node_id INT UNSIGNED, remote_node_id INT UNSIGNED, connection_status INT UNSIGNED,
  remote_address VARCHAR(512), bytes_sent BIGINT UNSIGNED, bytes_received BIGINT UNSIGNED,
  connect_count INT UNSIGNED, overloaded INT UNSIGNED, overload_count INT UNSIGNED,
  slowdown INT UNSIGNED, slowdown_count INT UNSIGNED, encrypted INT UNSIGNED
) ENGINE=InnoDB CHARACTER SET latin1;
CREATE DEFINER=`root`@`localhost` SQL SECURITY INVOKER VIEW ndbinfo.transporters AS
SELECT node_id, remote_node_id, CASE connection_status WHEN 0 THEN "CONNECTED" WHEN 1 THEN "CONNECTING" WHEN 2 THEN "DISCONNECTED" WHEN 3 THEN "DISCONNECTING" ELSE NULL END AS status, remote_address, bytes_sent, bytes_received, connect_count, overloaded, overload_count, slowdown, slowdown_count, encrypted FROM ndbinfo.`ndb$transporters`;

-- A.1.1 resources (in 32 KB pages; base also has high)
CREATE TABLE ndbinfo.`ndb$resources` (
  node_id INT UNSIGNED, resource_id INT UNSIGNED, reserved INT UNSIGNED, used INT UNSIGNED,
  `max` INT UNSIGNED, high INT UNSIGNED, spare INT UNSIGNED
) ENGINE=InnoDB CHARACTER SET latin1;
CREATE DEFINER=`root`@`localhost` SQL SECURITY INVOKER VIEW ndbinfo.resources AS
SELECT node_id, CASE resource_id WHEN 0 THEN "RESERVED" WHEN 1 THEN "TRANSACTION_MEMORY" WHEN 2 THEN "DISK_RECORDS" WHEN 3 THEN "DATA_MEMORY" WHEN 4 THEN "JOBBUFFER" WHEN 5 THEN "FILE_BUFFERS" WHEN 6 THEN "TRANSPORTER_BUFFERS" WHEN 7 THEN "DISK_PAGE_BUFFER" WHEN 8 THEN "QUERY_MEMORY" WHEN 9 THEN "SCHEMA_TRANS_MEMORY" ELSE "<unknown>" END AS resource_name, reserved, used, `max`, spare FROM ndbinfo.`ndb$resources`;

-- A.1.1 membership, arbitrator_validity_detail and _summary
CREATE TABLE ndbinfo.`ndb$membership` (
  node_id INT UNSIGNED, group_id INT UNSIGNED, left_node INT UNSIGNED, right_node INT UNSIGNED,
  president INT UNSIGNED, successor INT UNSIGNED, dynamic_id INT UNSIGNED, arbitrator INT UNSIGNED,
  arb_ticket VARCHAR(512), arb_state INT UNSIGNED, arb_connected INT UNSIGNED,
  conn_rank1_arbs VARCHAR(512), conn_rank2_arbs VARCHAR(512)
) ENGINE=InnoDB CHARACTER SET latin1;
CREATE DEFINER=`root`@`localhost` SQL SECURITY INVOKER VIEW ndbinfo.membership AS
SELECT node_id, group_id, left_node, right_node, president, successor, dynamic_id & 0xFFFF AS succession_order, dynamic_id >> 16 AS Conf_HB_order, arbitrator, arb_ticket, CASE arb_state WHEN 0 THEN "ARBIT_NULL" WHEN 1 THEN "ARBIT_INIT" WHEN 2 THEN "ARBIT_FIND" WHEN 3 THEN "ARBIT_PREP1" WHEN 4 THEN "ARBIT_PREP2" WHEN 5 THEN "ARBIT_START" WHEN 6 THEN "ARBIT_RUN" WHEN 7 THEN "ARBIT_CHOOSE" WHEN 8 THEN "ARBIT_CRASH" ELSE "UNKNOWN" END AS arb_state, CASE arb_connected WHEN 1 THEN "Yes" ELSE "No" END AS arb_connected, conn_rank1_arbs AS connected_rank1_arbs, conn_rank2_arbs AS connected_rank2_arbs FROM ndbinfo.`ndb$membership`;
CREATE DEFINER=`root`@`localhost` SQL SECURITY INVOKER VIEW ndbinfo.arbitrator_validity_detail AS
SELECT node_id, arbitrator, arb_ticket, CASE arb_connected WHEN 1 THEN "Yes" ELSE "No" END AS arb_connected, CASE arb_state WHEN 0 THEN "ARBIT_NULL" WHEN 1 THEN "ARBIT_INIT" WHEN 2 THEN "ARBIT_FIND" WHEN 3 THEN "ARBIT_PREP1" WHEN 4 THEN "ARBIT_PREP2" WHEN 5 THEN "ARBIT_START" WHEN 6 THEN "ARBIT_RUN" WHEN 7 THEN "ARBIT_CHOOSE" WHEN 8 THEN "ARBIT_CRASH" ELSE "UNKNOWN" END AS arb_state FROM ndbinfo.`ndb$membership` ORDER BY arbitrator, arb_connected DESC;
CREATE DEFINER=`root`@`localhost` SQL SECURITY INVOKER VIEW ndbinfo.arbitrator_validity_summary AS
SELECT arbitrator, arb_ticket, CASE arb_connected WHEN 1 THEN "Yes" ELSE "No" END AS arb_connected, count(*) AS consensus_count FROM ndbinfo.`ndb$membership` GROUP BY arbitrator, arb_ticket, arb_connected;

-- A.1.1 restart_info (22 columns, all selected)
CREATE TABLE ndbinfo.`ndb$restart_info` (
  node_id INT UNSIGNED, node_restart_status VARCHAR(512), node_restart_status_int INT UNSIGNED,
  secs_to_complete_node_failure INT UNSIGNED, secs_to_allocate_node_id INT UNSIGNED,
  secs_to_include_in_heartbeat_protocol INT UNSIGNED, secs_until_wait_for_ndbcntr_master INT UNSIGNED,
  secs_wait_for_ndbcntr_master INT UNSIGNED, secs_to_get_start_permitted INT UNSIGNED,
  secs_to_wait_for_lcp_for_copy_meta_data INT UNSIGNED, secs_to_copy_meta_data INT UNSIGNED,
  secs_to_include_node INT UNSIGNED, secs_starting_node_to_request_local_recovery INT UNSIGNED,
  secs_for_local_recovery INT UNSIGNED, secs_restore_fragments INT UNSIGNED,
  secs_undo_disk_data INT UNSIGNED, secs_exec_redo_log INT UNSIGNED, secs_index_rebuild INT UNSIGNED,
  secs_to_synchronize_starting_node INT UNSIGNED, secs_wait_lcp_for_restart INT UNSIGNED,
  secs_wait_subscription_handover INT UNSIGNED, total_restart_secs INT UNSIGNED
) ENGINE=InnoDB CHARACTER SET latin1;
CREATE DEFINER=`root`@`localhost` SQL SECURITY INVOKER VIEW ndbinfo.restart_info AS
SELECT * FROM ndbinfo.`ndb$restart_info`;

-- A.1.1 cluster_operations. The base table's name and its state lookup
-- table's columns are not in the facts; these are assumed. The simulator
-- runs no transactions, so both stay empty.
CREATE TABLE ndbinfo.`ndb$dblqh_tcconnect_state` (
  state_int_value INT UNSIGNED NOT NULL PRIMARY KEY, state_name VARCHAR(256), state_friendly_name VARCHAR(256)
) ENGINE=InnoDB CHARACTER SET latin1;
CREATE TABLE ndbinfo.`ndb$operations` (
  node_id INT UNSIGNED, block_instance INT UNSIGNED, objid INT UNSIGNED, tcref INT UNSIGNED,
  apiref INT UNSIGNED, transid0 INT UNSIGNED, transid1 INT UNSIGNED, tableid INT UNSIGNED,
  fragmentid INT UNSIGNED, op INT UNSIGNED, state INT UNSIGNED, flags INT UNSIGNED
) ENGINE=InnoDB CHARACTER SET latin1;
CREATE DEFINER=`root`@`localhost` SQL SECURITY INVOKER VIEW ndbinfo.cluster_operations AS
SELECT o.node_id, o.block_instance, o.transid0 + (o.transid1 << 32) AS transid, CASE o.op WHEN 1 THEN "READ" WHEN 2 THEN "READ-SH" WHEN 3 THEN "READ-EX" WHEN 4 THEN "INSERT" WHEN 5 THEN "UPDATE" WHEN 6 THEN "DELETE" WHEN 7 THEN "WRITE" WHEN 8 THEN "UNLOCK" WHEN 9 THEN "REFRESH" WHEN 257 THEN "SCAN" WHEN 258 THEN "SCAN-SH" WHEN 259 THEN "SCAN-EX" ELSE "<unknown>" END AS operation_type, s.state_friendly_name AS state, o.tableid, o.fragmentid, (o.apiref & 65535) AS client_node_id, (o.apiref >> 16) AS client_block_ref, (o.tcref & 65535) AS tc_node_id, ((o.tcref >> 16) & 511) AS tc_block_no, ((o.tcref >> 25) & 127) AS tc_block_instance FROM ndbinfo.`ndb$operations` o LEFT JOIN ndbinfo.`ndb$dblqh_tcconnect_state` s ON s.state_int_value = o.state;

-- A.1.0 hard-coded ndb$backup_id, and A.1.1 backup_id (one row)
CREATE TABLE ndbinfo.`ndb$backup_id` (
  id BIGINT UNSIGNED, fragment INT UNSIGNED, row_id BIGINT UNSIGNED
) ENGINE=InnoDB CHARACTER SET latin1;
CREATE DEFINER=`root`@`localhost` SQL SECURITY INVOKER VIEW ndbinfo.backup_id AS
SELECT id FROM ndbinfo.`ndb$backup_id`;

-- A.1.1 config_values
CREATE TABLE ndbinfo.`ndb$config_values` (
  node_id INT UNSIGNED, config_param INT UNSIGNED, config_value VARCHAR(512)
) ENGINE=InnoDB CHARACTER SET latin1;
CREATE DEFINER=`root`@`localhost` SQL SECURITY INVOKER VIEW ndbinfo.config_values AS
SELECT node_id, config_param, config_value FROM ndbinfo.`ndb$config_values`;
