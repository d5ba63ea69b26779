-- CreateTable
CREATE TABLE "experiments" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "name" TEXT NOT NULL,
    "task" TEXT NOT NULL,
    "config" TEXT NOT NULL,
    "model_spec_hash" TEXT NOT NULL,
    "created_at" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" DATETIME NOT NULL
);

-- CreateTable
CREATE TABLE "rounds" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "experiment_id" TEXT NOT NULL,
    "number" INTEGER NOT NULL,
    "attempt" INTEGER NOT NULL DEFAULT 1,
    "status" TEXT NOT NULL,
    "failure_code" TEXT,
    "failure_reason" TEXT,
    "secure_aggregation" BOOLEAN NOT NULL,
    "started_at" DATETIME NOT NULL,
    "finished_at" DATETIME NOT NULL,
    "duration_ms" INTEGER NOT NULL,
    "participants_count" INTEGER NOT NULL,
    "dropped_count" INTEGER NOT NULL,
    "bytes_received" BIGINT NOT NULL,
    "train_loss" REAL,
    "test_loss" REAL,
    "test_accuracy" REAL,
    "created_at" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "rounds_experiment_id_fkey" FOREIGN KEY ("experiment_id") REFERENCES "experiments" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "clients" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "public_key" TEXT NOT NULL,
    "display_name" TEXT,
    "first_seen_at" DATETIME NOT NULL,
    "last_seen_at" DATETIME NOT NULL
);

-- CreateTable
CREATE TABLE "participations" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "round_id" INTEGER NOT NULL,
    "client_id" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "num_examples" INTEGER NOT NULL,
    "error_code" TEXT,
    CONSTRAINT "participations_round_id_fkey" FOREIGN KEY ("round_id") REFERENCES "rounds" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "participations_client_id_fkey" FOREIGN KEY ("client_id") REFERENCES "clients" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "metrics" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "round_id" INTEGER NOT NULL,
    "key" TEXT NOT NULL,
    "value" REAL,
    CONSTRAINT "metrics_round_id_fkey" FOREIGN KEY ("round_id") REFERENCES "rounds" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "checkpoints" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "experiment_id" TEXT NOT NULL,
    "round_id" INTEGER NOT NULL,
    "round_number" INTEGER NOT NULL,
    "weights" BLOB NOT NULL,
    "strategy_state" BLOB NOT NULL,
    "model_hash" TEXT NOT NULL,
    "created_at" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "checkpoints_experiment_id_fkey" FOREIGN KEY ("experiment_id") REFERENCES "experiments" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "checkpoints_round_id_fkey" FOREIGN KEY ("round_id") REFERENCES "rounds" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateIndex
CREATE UNIQUE INDEX "experiments_name_key" ON "experiments"("name");

-- CreateIndex
CREATE INDEX "rounds_experiment_id_status_number_idx" ON "rounds"("experiment_id", "status", "number");

-- CreateIndex
CREATE UNIQUE INDEX "rounds_experiment_id_number_attempt_key" ON "rounds"("experiment_id", "number", "attempt");

-- CreateIndex
CREATE INDEX "participations_client_id_idx" ON "participations"("client_id");

-- CreateIndex
CREATE UNIQUE INDEX "participations_round_id_client_id_key" ON "participations"("round_id", "client_id");

-- CreateIndex
CREATE UNIQUE INDEX "metrics_round_id_key_key" ON "metrics"("round_id", "key");

-- CreateIndex
CREATE UNIQUE INDEX "checkpoints_round_id_key" ON "checkpoints"("round_id");

-- CreateIndex
CREATE UNIQUE INDEX "checkpoints_experiment_id_round_number_key" ON "checkpoints"("experiment_id", "round_number");
