import { integer, pgTable, text } from "drizzle-orm/pg-core";
import { createdAt } from "./common";

/** A business / tenant. Ids are chosen by the operator (e.g. 10), as in the seed's manifests. */
export const bizs = pgTable("bizs", {
  id: integer("id").primaryKey(),
  name: text("name").notNull().unique(),
  createdAt: createdAt(),
});
