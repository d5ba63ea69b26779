-- CreateTable
CREATE TABLE "enrollments" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "experiment_id" TEXT NOT NULL,
    "client_id" TEXT NOT NULL,
    "method" TEXT NOT NULL,
    "first_enrolled_at" DATETIME NOT NULL,
    "last_enrolled_at" DATETIME NOT NULL,
    CONSTRAINT "enrollments_experiment_id_fkey" FOREIGN KEY ("experiment_id") REFERENCES "experiments" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "enrollments_client_id_fkey" FOREIGN KEY ("client_id") REFERENCES "clients" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);

-- CreateIndex
CREATE INDEX "enrollments_client_id_idx" ON "enrollments"("client_id");

-- CreateIndex
CREATE UNIQUE INDEX "enrollments_experiment_id_client_id_key" ON "enrollments"("experiment_id", "client_id");
