-- CreateTable
CREATE TABLE "enrollments" (
    "id" SERIAL NOT NULL,
    "experiment_id" TEXT NOT NULL,
    "client_id" TEXT NOT NULL,
    "method" TEXT NOT NULL,
    "first_enrolled_at" TIMESTAMP(3) NOT NULL,
    "last_enrolled_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "enrollments_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "enrollments_client_id_idx" ON "enrollments"("client_id");

-- CreateIndex
CREATE UNIQUE INDEX "enrollments_experiment_id_client_id_key" ON "enrollments"("experiment_id", "client_id");

-- AddForeignKey
ALTER TABLE "enrollments" ADD CONSTRAINT "enrollments_experiment_id_fkey" FOREIGN KEY ("experiment_id") REFERENCES "experiments"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "enrollments" ADD CONSTRAINT "enrollments_client_id_fkey" FOREIGN KEY ("client_id") REFERENCES "clients"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
