-- CreateTable
CREATE TABLE "experiments" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "task" TEXT NOT NULL,
    "config" TEXT NOT NULL,
    "model_spec_hash" TEXT NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "experiments_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "rounds" (
    "id" SERIAL NOT NULL,
    "experiment_id" TEXT NOT NULL,
    "number" INTEGER NOT NULL,
    "attempt" INTEGER NOT NULL DEFAULT 1,
    "status" TEXT NOT NULL,
    "failure_code" TEXT,
    "failure_reason" TEXT,
    "secure_aggregation" BOOLEAN NOT NULL,
    "started_at" TIMESTAMP(3) NOT NULL,
    "finished_at" TIMESTAMP(3) NOT NULL,
    "duration_ms" INTEGER NOT NULL,
    "participants_count" INTEGER NOT NULL,
    "dropped_count" INTEGER NOT NULL,
    "bytes_received" BIGINT NOT NULL,
    "train_loss" DOUBLE PRECISION,
    "test_loss" DOUBLE PRECISION,
    "test_accuracy" DOUBLE PRECISION,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "rounds_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "clients" (
    "id" TEXT NOT NULL,
    "public_key" TEXT NOT NULL,
    "display_name" TEXT,
    "first_seen_at" TIMESTAMP(3) NOT NULL,
    "last_seen_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "clients_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "participations" (
    "id" SERIAL NOT NULL,
    "round_id" INTEGER NOT NULL,
    "client_id" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "num_examples" INTEGER NOT NULL,
    "error_code" TEXT,

    CONSTRAINT "participations_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "metrics" (
    "id" SERIAL NOT NULL,
    "round_id" INTEGER NOT NULL,
    "key" TEXT NOT NULL,
    "value" DOUBLE PRECISION,

    CONSTRAINT "metrics_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "checkpoints" (
    "id" SERIAL NOT NULL,
    "experiment_id" TEXT NOT NULL,
    "round_id" INTEGER NOT NULL,
    "round_number" INTEGER NOT NULL,
    "weights" BYTEA NOT NULL,
    "strategy_state" BYTEA NOT NULL,
    "model_hash" TEXT NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "checkpoints_pkey" PRIMARY KEY ("id")
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

-- AddForeignKey
ALTER TABLE "rounds" ADD CONSTRAINT "rounds_experiment_id_fkey" FOREIGN KEY ("experiment_id") REFERENCES "experiments"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "participations" ADD CONSTRAINT "participations_round_id_fkey" FOREIGN KEY ("round_id") REFERENCES "rounds"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "participations" ADD CONSTRAINT "participations_client_id_fkey" FOREIGN KEY ("client_id") REFERENCES "clients"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "metrics" ADD CONSTRAINT "metrics_round_id_fkey" FOREIGN KEY ("round_id") REFERENCES "rounds"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "checkpoints" ADD CONSTRAINT "checkpoints_experiment_id_fkey" FOREIGN KEY ("experiment_id") REFERENCES "experiments"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "checkpoints" ADD CONSTRAINT "checkpoints_round_id_fkey" FOREIGN KEY ("round_id") REFERENCES "rounds"("id") ON DELETE CASCADE ON UPDATE CASCADE;
