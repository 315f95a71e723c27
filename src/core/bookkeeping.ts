/** Our bookkeeping lives here; the catalog snapshot leaves this schema out. */
export const BookkeepingSchema = '_pg_migrate_verify';
