/* Force-included (gcc -include) when the CPU sources are compiled into the CUDA library: the CPU model
 * becomes the CUDA build's host side (layout, initialisation, tensor table, host mirrors), so the two
 * builds share one parameter layout by construction. Every ABI entry point the CUDA build implements
 * itself is renamed here; the rest (version, error string, threads, sampling, sgemm, knn) are shared. */
#ifndef NR_CPU_AS_HOST_H
#define NR_CPU_AS_HOST_H
#define nr_model cpu_model
#define nr_state cpu_state
#define nr_engine_info cpuhost_engine_info
#define nr_model_new cpuhost_model_new
#define nr_model_free cpuhost_model_free
#define nr_model_num_params cpuhost_model_num_params
#define nr_model_params cpuhost_model_params
#define nr_model_grads cpuhost_model_grads
#define nr_model_opt_m cpuhost_model_opt_m
#define nr_model_opt_v cpuhost_model_opt_v
#define nr_model_opt_step cpuhost_model_opt_step
#define nr_model_set_opt_step cpuhost_model_set_opt_step
#define nr_model_num_tensors cpuhost_model_num_tensors
#define nr_model_tensor_name cpuhost_model_tensor_name
#define nr_model_tensor_ndim cpuhost_model_tensor_ndim
#define nr_model_tensor_dim cpuhost_model_tensor_dim
#define nr_model_tensor_offset cpuhost_model_tensor_offset
#define nr_model_tensor_numel cpuhost_model_tensor_numel
#define nr_model_tensor_group cpuhost_model_tensor_group
#define nr_model_act_bytes cpuhost_model_act_bytes
#define nr_set_recompute cpuhost_set_recompute
#define nr_step cpuhost_step
#define nr_eval cpuhost_eval
#define nr_logits cpuhost_logits
#define nr_embed cpuhost_embed
#define nr_zero_grad cpuhost_zero_grad
#define nr_optim_step cpuhost_optim_step
#define nr_state_new cpuhost_state_new
#define nr_state_free cpuhost_state_free
#define nr_state_reset cpuhost_state_reset
#define nr_state_pos cpuhost_state_pos
#define nr_state_bytes cpuhost_state_bytes
#define nr_state_forward cpuhost_state_forward
#define nr_device_count cpuhost_device_count
#define nr_set_device cpuhost_set_device
#define nr_model_download cpuhost_model_download
#define nr_model_upload cpuhost_model_upload
#define nr_comm_unique_id cpuhost_comm_unique_id
#define nr_comm_init cpuhost_comm_init
#define nr_comm_allreduce_grads cpuhost_comm_allreduce_grads
#define nr_comm_free cpuhost_comm_free
#endif
