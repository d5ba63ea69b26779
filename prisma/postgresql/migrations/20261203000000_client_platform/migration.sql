-- AlterTable
ALTER TABLE "clients" ADD COLUMN "platform" TEXT NOT NULL DEFAULT 'node';
ALTER TABLE "clients" ADD COLUMN "backend" TEXT;
