// The command-line interface.
export { main, runCli } from "./main";
export { serve } from "./serve";
