export type { Deps, Services } from "../services/container.ts";
