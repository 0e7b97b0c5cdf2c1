export * from "./bizs";
export * from "./services";
export * from "./files";
export * from "./scripts";
export * from "./releases";
export * from "./access";
export * from "./clients";
export * from "./kvs";
