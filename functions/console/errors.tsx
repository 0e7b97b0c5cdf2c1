/** @jsxImportSource hono/jsx */
import { Layout } from "./layout";

/** A plain page for refusals and not-found; it has no navigation because the session may be gone. */
export const errorPage = (title: string, message: string) => (
  <Layout title={title}>
    <div class="card login">
      <h1>{title}</h1>
      <p role="alert">{message}</p>
      <p><a href="/ui">Back to the console</a> · <a href="/login">Sign in</a></p>
    </div>
  </Layout>
);
